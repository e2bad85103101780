import {
  type ConvShape,
  type DecomposeContext,
  type Decomposition,
  type DecompositionStrategy,
  denseAsConv,
  type Support,
  type TargetLayer,
  unsupportedReason,
} from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import { SvdRankError, SvdTargetError } from './errors.js';
import { factorize, type LowRankFactorization, rankForEnergy, relativeTruncationError } from './factorize.js';
import {
  buildSvdDenseLayers,
  buildSvdLayers,
  type ConvActivation,
  type DenseActivation,
  factorKernels,
  kernelMatrix,
} from './layers.js';
import { type SvdMode, type SvdOptions, svdOptionsSchema } from './options.js';
import { planRank, svdConvShapes, svdCost } from './rank.js';

/** Version of `@decompose/svd` (kept equal to package.json by a test). */
export const SVD_VERSION = '0.0.0';

// A sensitivity scan decomposes the same trained kernel at many ranks, and the factorization depends only on the
// kernel's data and the mode, so it is computed once per (data, shape, mode). A tensor's `dataId` names immutable
// data: a variable that is assigned (trained further) gets a new one, so a stale entry is never hit.
const factorizations = new WeakMap<object, Map<string, LowRankFactorization>>();

function kernelFactorization(kernel: tf.Tensor, shape: ConvShape, mode: SvdMode): LowRankFactorization {
  let cached = factorizations.get(kernel.dataId);
  if (cached === undefined) {
    cached = new Map();
    factorizations.set(kernel.dataId, cached);
  }
  const key = `${mode} ${kernel.shape.join('×')}`;
  let factorization = cached.get(key);
  if (factorization === undefined) {
    factorization = factorize(kernelMatrix(kernel.dataSync(), shape, mode));
    cached.set(key, factorization);
  }
  return factorization;
}

/**
 * What an SVD rewrite of `target` needs (its geometry, kernel and rank plan), or why it cannot be done. A Dense
 * layer's geometry is the 1×1 convolution it equals, so its weight-mode SVD is the convolution's.
 */
function resolve(
  target: TargetLayer,
  options: SvdOptions,
):
  | { dense: boolean; shape: ConvShape; kernel: tf.Tensor; plan: { rank: number } | { energy: number } }
  | { reason: string } {
  if (target.className === 'Dense') {
    const { dense, denseKernel } = target;
    if (dense === null || denseKernel === null) {
      return { reason: unsupportedReason(target) ?? 'the Dense layer has no known input size' };
    }
    if (options.mode === 'spatial') {
      return {
        reason:
          "spatial SVD splits a k_h×k_w kernel, and a Dense layer has no spatial kernel; use mode 'weight'",
      };
    }
    const shape = denseAsConv(dense);
    const plan = planRank(shape, options);
    return 'reason' in plan ? plan : { dense: true, shape, kernel: denseKernel, plan };
  }
  if (target.className !== 'Conv2D') {
    return {
      reason:
        target.className === 'DepthwiseConv2D'
          ? unsupportedReason(target)!
          : `SVD rewrites Conv2D and Dense layers only, not ${target.className}`,
    };
  }
  const { conv: shape, kernel } = target;
  if (shape === null || kernel === null) {
    return { reason: 'the layer is not a plain channels-last Conv2D with known input size' };
  }
  const [kh, kw] = shape.kernelSize;
  if (options.mode === 'spatial' && (kh < 2 || kw < 2)) {
    return {
      reason: `spatial SVD splits a k_h×k_w kernel into k_h×1 and 1×k_w and needs both ≥ 2 (got ${kh}×${kw}); use mode 'weight'`,
    };
  }
  const plan = planRank(shape, options);
  return 'reason' in plan ? plan : { dense: false, shape, kernel, plan };
}

/**
 * Low-rank SVD of a convolution's or a Dense layer's weights. A Dense W (C_in × units) ≈ U_r S_r V_rᵀ becomes
 * two stock Dense layers, C_in → r (no bias, linear) and r → units (original bias and activation), rank by
 * `rank`, `ratio` or `energy` as for a convolution (`weight` mode only). `weight` mode: W (C_out × C_in·k_h·k_w) ≈ U_r S_r V_rᵀ becomes a
 * k_h×k_w convolution with r filters (original stride, padding, dilation; no bias) and a 1×1 convolution
 * r → C_out (original bias and activation). `spatial` mode (Jaderberg-style): W reshaped to
 * (C_in·k_h) × (k_w·C_out) becomes a k_h×1 convolution C_in → r (vertical stride) and a 1×k_w convolution
 * r → C_out (horizontal stride). Both factors carry √S_r. Layers are stock tfjs `Conv2D`s.
 */
export const svdStrategy: DecompositionStrategy<SvdOptions> = {
  name: 'svd',
  version: SVD_VERSION,
  description:
    'Truncated SVD of a convolution (k×k then 1×1, or k×1 then 1×k) or of a Dense layer (two narrower Dense layers).',
  optionsSchema: svdOptionsSchema,

  supports(target: TargetLayer, options: SvdOptions): Support {
    const resolved = resolve(target, options);
    return 'reason' in resolved ? { ok: false, reason: resolved.reason } : { ok: true };
  },

  decompose(target: TargetLayer, options: SvdOptions, context: DecomposeContext): Decomposition {
    const resolved = resolve(target, options);
    if ('reason' in resolved) {
      throw new SvdTargetError(`Cannot rewrite layer '${target.name}' with SVD: ${resolved.reason}.`);
    }
    const { dense, shape, kernel, plan } = resolved;
    const { mode } = options;
    // Computed at most once per kernel and mode (cached), whether energy or the trained init asks first.
    const factorization = () => kernelFactorization(kernel, shape, mode);
    const rank = 'rank' in plan ? plan.rank : rankForEnergy(factorization().singularValues, plan.energy);
    const layerOptions = {
      name: target.name,
      // The activation comes from the tfjs layer's own config, so it is a tfjs activation name.
      activation: target.activation as ConvActivation & DenseActivation,
      seed: context.seed,
      trainable: target.layer.trainable,
    };
    const layers = dense
      ? buildSvdDenseLayers(shape.outChannels, shape.useBias, rank, layerOptions)
      : buildSvdLayers(shape, mode, rank, layerOptions);
    const cost = svdCost(shape, mode, rank);
    const info: Record<string, number | string> = { mode, rank, params: cost.params };
    if (context.init === 'scratch') return { layers, info, cost };

    const { singularValues, factors } = factorization();
    const { left, right } = factors(rank);
    const [firstKernel, secondKernel] = factorKernels(left, right, shape, mode);
    const [first, second] = svdConvShapes(shape, mode, rank);
    const weights = tf.tidy(() => {
      const bias = shape.useBias ? [target.bias?.clone() ?? tf.zeros([shape.outChannels])] : [];
      if (dense) {
        return [
          [tf.tensor2d(firstKernel, [shape.inChannels, rank])],
          [tf.tensor2d(secondKernel, [rank, shape.outChannels]), ...bias],
        ];
      }
      return [
        [tf.tensor4d(firstKernel, kernelShape(first))],
        [tf.tensor4d(secondKernel, kernelShape(second)), ...bias],
      ];
    });
    info.relativeError = relativeTruncationError(singularValues, rank);
    return { layers, weights, info, cost };
  },

  cost(shape: ConvShape, options: SvdOptions) {
    const plan = planRank(shape, options);
    if ('reason' in plan) throw new SvdRankError(`Cannot cost this SVD: ${plan.reason}.`);
    if ('energy' in plan) {
      throw new SvdRankError(
        'With energy, the rank comes from the trained weights’ singular values, so a shape alone has no cost; use rank or ratio, or read info.rank and info.params of the decomposition.',
      );
    }
    return svdCost(shape, options.mode, plan.rank);
  },
};

function kernelShape(shape: ConvShape): [number, number, number, number] {
  return [shape.kernelSize[0], shape.kernelSize[1], shape.inChannels, shape.outChannels];
}
