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
import { BASIS_ACTIVATIONS, type BasisActivation, BasisConv2D } from './basis-conv2d.js';
import { BASIS_DENSE_ACTIVATIONS, BasisDense, type BasisDenseActivation } from './basis-dense.js';
import { basisCost } from './cost.js';
import { BasisConversionError } from './errors.js';
import { type BasisFit, fitBasis } from './fit.js';
import { type BasisOptions, basisOptionsSchema, basisSize } from './options.js';

/** Version of this strategy (of `@decompose/basis`). */
export const BASIS_VERSION = '0.0.0';

function isBasisActivation(name: string): name is BasisActivation {
  return (BASIS_ACTIVATIONS as readonly string[]).includes(name);
}

function isBasisDenseActivation(name: string): name is BasisDenseActivation {
  return (BASIS_DENSE_ACTIVATIONS as readonly string[]).includes(name);
}

/** Whether `target` is a Dense layer the basis strategy can rewrite (as a {@link BasisDense}) with `options`. */
function denseSupport(target: TargetLayer, options: BasisOptions): Support {
  if (target.dense === null || target.denseKernel === null) {
    return { ok: false, reason: unsupportedReason(target) ?? 'the Dense layer has no known input size' };
  }
  if (!isBasisDenseActivation(target.activation)) {
    return {
      ok: false,
      reason: `activation '${target.activation}' is not supported (use one of ${BASIS_DENSE_ACTIVATIONS.join(', ')})`,
    };
  }
  return sizeSupport(denseAsConv(target.dense), options);
}

/** Whether `target` is a convolution or a Dense layer the basis strategy can rewrite with `options`. */
export function basisSupports(target: TargetLayer, options: BasisOptions): Support {
  if (target.className === 'Dense') return denseSupport(target, options);
  if (target.className !== 'Conv2D') {
    return {
      ok: false,
      reason: target.className.startsWith('Depthwise')
        ? unsupportedReason({ ...target, className: 'DepthwiseConv2D' })!
        : `basis convolutions replace plain Conv2D and Dense layers, not ${target.className}`,
    };
  }
  const shape = target.conv;
  if (shape === null || target.kernel === null) {
    return { ok: false, reason: 'the layer has no 2-D convolution geometry or kernel' };
  }
  const config = target.layer.getConfig();
  if (config.dataFormat === 'channelsFirst') {
    return { ok: false, reason: 'only channelsLast (NHWC) convolutions are supported' };
  }
  if (Math.max(...shape.strides) > 1 && Math.max(...shape.dilation) > 1) {
    return { ok: false, reason: 'tfjs cannot combine strides > 1 with dilation > 1' };
  }
  if (!isBasisActivation(target.activation)) {
    return {
      ok: false,
      reason: `fused activation '${target.activation}' is not supported (use one of ${BASIS_ACTIVATIONS.join(', ')})`,
    };
  }
  return sizeSupport(shape, options);
}

/** Whether m basis filters (or neurons) of a layer of this shape (a Dense as its 1×1 convolution) save anything. */
function sizeSupport(shape: ConvShape, options: BasisOptions): Support {
  const m = basisSize(shape.outChannels, options);
  if (m > shape.outChannels) {
    return { ok: false, reason: `m = ${m} exceeds the layer's ${shape.outChannels} output channels` };
  }
  if (m === shape.outChannels && !options.allowFullRank) {
    return {
      ok: false,
      reason: `m = ${m} equals C_out, which saves nothing; lower ratio/m or set allowFullRank`,
    };
  }
  const [kh, kw] = shape.kernelSize;
  const denseParams = kh * kw * shape.inChannels * shape.outChannels;
  const params = basisCost(shape, options).params - (shape.useBias ? shape.outChannels : 0);
  if (m < shape.outChannels && params >= denseParams) {
    return {
      ok: false,
      reason: `m = ${m} needs ${params} weights, not fewer than the dense ${denseParams}; lower ratio/m (m ≤ ${Math.floor((kh * kw * shape.inChannels * shape.outChannels) / (kh * kw * shape.inChannels + shape.outChannels))})`,
    };
  }
  return { ok: true };
}

/** A trained convolution's weights and geometry, as {@link basisFromTrained} needs them. */
export interface TrainedConv {
  name: string;
  /** Kernel `[kh, kw, C_in, C_out]`. */
  kernel: tf.Tensor4D;
  bias: tf.Tensor1D | null;
  strides: readonly [number, number];
  padding: 'same' | 'valid';
  dilation: readonly [number, number];
  activation: BasisActivation;
}

/**
 * Converts a trained convolution: picks m filters as the basis (column-pivoted QR), fits the others by
 * least squares, and returns the layer with its initial weights and `relativeError` = ‖W − A·B‖/‖W‖.
 */
export function basisFromTrained(
  conv: TrainedConv,
  options: Pick<BasisOptions, 'ratio' | 'm' | 'form'>,
): Decomposition & { layers: [BasisConv2D]; weights: tf.Tensor[][] } {
  const [kh, kw, inChannels, outChannels] = conv.kernel.shape;
  const m = basisSize(outChannels, options);
  if (m > outChannels) {
    throw new BasisConversionError(
      `${conv.name}: m = ${m} exceeds its ${outChannels} output channels; lower ratio or m.`,
    );
  }
  const fit = fitBasis(conv.kernel.dataSync(), outChannels, m);
  const rest = fit.combinationRows.length;
  const weights = tf.tidy(() => {
    const flat = tf.reshape(conv.kernel, [kh * kw * inChannels, outChannels]) as tf.Tensor2D;
    const [basis, ...others] = basisWeights(flat, fit, options.form, conv.bias);
    return [tf.reshape(basis!, [kh, kw, inChannels, m]), ...others];
  });
  const layer = new BasisConv2D({
    name: conv.name,
    filters: outChannels,
    basisSize: m,
    kernelSize: [kh, kw],
    strides: conv.strides,
    padding: conv.padding,
    dilationRate: conv.dilation,
    useBias: conv.bias !== null,
    activation: conv.activation,
    form: options.form,
    outputOrder:
      options.form === 'full' || rest === 0 ? null : internalOrder(fit.basisRows, fit.combinationRows),
  });
  return {
    layers: [layer],
    weights: [weights],
    info: { m, form: options.form, relativeError: fit.relativeError },
  };
}

/**
 * The weights of a basis layer fitted to the kernel matrix `flat` (D × n, column j = filter or neuron j):
 * the basis columns (D × m), the coefficients in the layout of `form` (A'ᵀ, m × (n − m), absent when m = n; or
 * Aᵀ, m × n, in output order), then a copy of the bias. Shared by convolutions and Dense layers. Call inside
 * `tf.tidy`.
 */
function basisWeights(
  flat: tf.Tensor2D,
  fit: BasisFit,
  form: BasisOptions['form'],
  bias: tf.Tensor1D | null,
): tf.Tensor[] {
  const m = fit.basisRows.length;
  const rest = fit.combinationRows.length;
  // A'ᵀ (m × rest), the layout of the coefficients weight.
  const coefficientsT = tf.transpose(tf.tensor2d(Float32Array.from(fit.coefficients), [rest, m], 'float32'));
  const list: tf.Tensor[] = [tf.gather(flat, fit.basisRows, 1)];
  if (form === 'full') {
    const columns = tf.concat([tf.eye(m), coefficientsT], 1);
    list.push(tf.gather(columns, internalOrder(fit.basisRows, fit.combinationRows), 1));
  } else if (rest > 0) {
    list.push(coefficientsT);
  }
  if (bias !== null) list.push(bias.clone());
  return list;
}

/** A trained Dense layer's weights, as {@link basisDenseFromTrained} needs them. */
export interface TrainedDense {
  name: string;
  /** Kernel `[C_in, units]`. */
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D | null;
  activation: BasisDenseActivation;
}

/**
 * Converts a trained Dense layer as {@link basisFromTrained} does a convolution (the same `fitBasis`: m
 * neurons picked by column-pivoted QR, the others fitted by least squares): a {@link BasisDense} with its
 * initial weights and `relativeError` = ‖W − A·B‖/‖W‖.
 */
export function basisDenseFromTrained(
  dense: TrainedDense,
  options: Pick<BasisOptions, 'ratio' | 'm' | 'form'>,
): Decomposition & { layers: [BasisDense]; weights: tf.Tensor[][] } {
  const units = dense.kernel.shape[1];
  const m = basisSize(units, options);
  if (m > units) {
    throw new BasisConversionError(`${dense.name}: m = ${m} exceeds its ${units} units; lower ratio or m.`);
  }
  const fit = fitBasis(dense.kernel.dataSync(), units, m);
  const rest = fit.combinationRows.length;
  const weights = tf.tidy(() => basisWeights(dense.kernel, fit, options.form, dense.bias));
  const layer = new BasisDense({
    name: dense.name,
    units,
    basisSize: m,
    useBias: dense.bias !== null,
    activation: dense.activation,
    form: options.form,
    outputOrder:
      options.form === 'full' || rest === 0 ? null : internalOrder(fit.basisRows, fit.combinationRows),
  });
  return {
    layers: [layer],
    weights: [weights],
    info: { m, form: options.form, relativeError: fit.relativeError },
  };
}

/** `order[j]` = internal output (basis first, then combinations) that is original output channel j. */
function internalOrder(basisRows: number[], combinationRows: number[]): number[] {
  const order = new Array<number>(basisRows.length + combinationRows.length);
  [...basisRows, ...combinationRows].forEach((row, t) => {
    order[row] = t;
  });
  return order;
}

function decomposeDense(
  target: TargetLayer,
  options: BasisOptions,
  context: DecomposeContext,
): Decomposition {
  const { dense, denseKernel } = target;
  if (dense === null || denseKernel === null || !isBasisDenseActivation(target.activation)) {
    throw new BasisConversionError(
      `${target.name} is not a Dense layer the basis strategy supports; check supports() first.`,
    );
  }
  if (context.init === 'trained') {
    return basisDenseFromTrained(
      { name: target.name, kernel: denseKernel, bias: target.bias, activation: target.activation },
      options,
    );
  }
  const m = basisSize(dense.units, options);
  const layer = new BasisDense({
    name: target.name,
    units: dense.units,
    basisSize: m,
    useBias: dense.useBias,
    activation: target.activation,
    form: options.form,
    seed: context.seed,
  });
  return { layers: [layer], info: { m, form: options.form } };
}

function decompose(target: TargetLayer, options: BasisOptions, context: DecomposeContext): Decomposition {
  if (target.className === 'Dense') return decomposeDense(target, options, context);
  const shape = target.conv;
  if (shape === null || target.kernel === null || !isBasisActivation(target.activation)) {
    throw new BasisConversionError(
      `${target.name} is not a convolution the basis strategy supports; check supports() first.`,
    );
  }
  if (context.init === 'trained') {
    return basisFromTrained(
      {
        name: target.name,
        kernel: target.kernel,
        bias: target.bias,
        strides: shape.strides,
        padding: shape.padding,
        dilation: shape.dilation,
        activation: target.activation,
      },
      options,
    );
  }
  const m = basisSize(shape.outChannels, options);
  const layer = new BasisConv2D({
    name: target.name,
    filters: shape.outChannels,
    basisSize: m,
    kernelSize: shape.kernelSize,
    strides: shape.strides,
    padding: shape.padding,
    dilationRate: shape.dilation,
    useBias: shape.useBias,
    activation: target.activation,
    form: options.form,
    seed: context.seed,
  });
  return { layers: [layer], info: { m, form: options.form } };
}

/**
 * Basis convolutions (arXiv 2408.06024): each rewritten Conv2D keeps m = round(ratio · C_out) trained
 * filters and forms its other outputs as trained linear combinations of theirs; a Dense layer likewise keeps
 * m = round(ratio · units) trained neurons ({@link BasisDense}).
 */
export const basisStrategy: DecompositionStrategy<BasisOptions> = {
  name: 'basis',
  version: BASIS_VERSION,
  description:
    'Basis convolutions and Dense layers: m trained filters (neurons), the other outputs as linear combinations of theirs.',
  optionsSchema: basisOptionsSchema,
  supports: basisSupports,
  decompose,
  cost: basisCost,
};
