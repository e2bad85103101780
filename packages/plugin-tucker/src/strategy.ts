import type {
  ConvShape,
  DecomposeContext,
  Decomposition,
  DecompositionStrategy,
  Layer,
  LayerCost,
  Support,
  TargetLayer,
} from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import { initializers, layers } from '@tensorflow/tfjs-layers';
import { TuckerRankError, TuckerTargetError } from './errors.js';
import { hosvd } from './hosvd.js';
import { type TuckerOptions, tuckerOptionsSchema } from './options.js';
import { planRanks, type TuckerRanks, tuckerConvShapes, tuckerCost } from './ranks.js';

/** Version of `decompose-plugin-tucker` (kept equal to package.json by a test). */
export const TUCKER_VERSION = '0.0.0';

type Activation = NonNullable<Parameters<typeof layers.conv2d>[0]['activation']>;

/** What a Tucker-2 rewrite of `target` needs (its geometry, kernel and ranks), or why it cannot be done. */
function resolve(
  target: TargetLayer,
  options: TuckerOptions,
): { shape: ConvShape; kernel: tf.Tensor4D; ranks: TuckerRanks } | { reason: string } {
  if (target.className !== 'Conv2D') {
    return { reason: `Tucker-2 rewrites Conv2D layers only, not ${target.className}` };
  }
  const { conv: shape, kernel } = target;
  if (shape === null || kernel === null) {
    return { reason: 'the layer is not a plain channels-last Conv2D with known input size' };
  }
  const plan = planRanks(shape, options);
  return 'reason' in plan ? plan : { shape, kernel, ranks: plan.ranks };
}

/**
 * The three stock `Conv2D` layers (unbuilt) of a Tucker-2 decomposition. From scratch, the two leading
 * convolutions are LeCun-uniform (variance 1/fan-in: they keep their input's scale) and the last He-uniform
 * (variance 2/fan-in), so the composite kernel has the variance He initialisation gives the dense layer.
 */
function tuckerLayers(shape: ConvShape, ranks: TuckerRanks, target: TargetLayer, seed: number): Layer[] {
  const names = ['tucker_in', 'tucker_core', 'tucker_out'];
  return tuckerConvShapes(shape, ranks).map((piece, i) =>
    layers.conv2d({
      name: `${target.name}_${names[i]}`,
      filters: piece.outChannels,
      kernelSize: [...piece.kernelSize],
      strides: [...piece.strides],
      dilationRate: [...piece.dilation] as [number, number],
      padding: piece.padding,
      useBias: piece.useBias,
      // Only the last convolution carries the original activation, which comes from a tfjs layer's config.
      activation: i === 2 ? (target.activation as Activation) : 'linear',
      kernelInitializer:
        i === 2 ? initializers.heUniform({ seed: seed + i }) : initializers.leCunUniform({ seed: seed + i }),
      trainable: target.layer.trainable,
    }),
  );
}

/**
 * Tucker-2 decomposition of a convolution (Kim et al. 2016, "Compression of Deep Convolutional Neural
 * Networks for Fast and Low Power Mobile Applications"): a 1×1 convolution C_in → r_in, a k×k core
 * convolution r_in → r_out with the original stride, padding and dilation, and a 1×1 convolution r_out → C_out
 * with the original bias and activation. Trained weights come from HOSVD.
 */
export const tuckerStrategy: DecompositionStrategy<TuckerOptions> = {
  name: 'tucker',
  version: TUCKER_VERSION,
  description:
    'Tucker-2 (HOSVD) decomposition of a convolution: 1×1 to r_in, k×k core to r_out, 1×1 to C_out.',
  optionsSchema: tuckerOptionsSchema,

  supports(target: TargetLayer, options: TuckerOptions): Support {
    const resolved = resolve(target, options);
    return 'reason' in resolved ? { ok: false, reason: resolved.reason } : { ok: true };
  },

  decompose(target: TargetLayer, options: TuckerOptions, context: DecomposeContext): Decomposition {
    const resolved = resolve(target, options);
    if ('reason' in resolved) {
      throw new TuckerTargetError(`Cannot rewrite layer '${target.name}' with Tucker-2: ${resolved.reason}.`);
    }
    const { shape, kernel, ranks } = resolved;
    const decomposed = tuckerLayers(shape, ranks, target, context.seed);
    const info: Record<string, number | string> = {
      ranks: ranks.join('×'),
      params: tuckerCost(shape, ranks).params,
    };
    if (context.init === 'scratch') return { layers: decomposed, info };

    const [kh, kw, cin, cout] = kernel.shape;
    const factors = hosvd(kernel.dataSync<'float32'>(), [kh, kw, cin, cout], ranks);
    const [rIn, rOut] = ranks;
    const weights = tf.tidy(() => [
      [tf.tensor4d(factors.input.to1DArray(), [1, 1, cin, rIn])],
      [tf.tensor4d(factors.core, [kh, kw, rIn, rOut])],
      [
        tf.tensor4d(factors.output.transpose().to1DArray(), [1, 1, rOut, cout]),
        ...(shape.useBias ? [target.bias?.clone() ?? tf.zeros([cout])] : []),
      ],
    ]);
    info.relativeError = factors.relativeError;
    return { layers: decomposed, weights, info };
  },

  cost(shape: ConvShape, options: TuckerOptions): LayerCost {
    const plan = planRanks(shape, options);
    if ('reason' in plan) {
      throw new TuckerRankError(`Cannot cost this Tucker-2 decomposition: ${plan.reason}.`);
    }
    return tuckerCost(shape, plan.ranks);
  },
};
