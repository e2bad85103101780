// Helpers for testing a strategy: a one-convolution model described the way surgery offers it, the decomposed
// model built from a Decomposition, and a relative difference. Exported as `@decompose/core/testing`.

import * as tf from '@tensorflow/tfjs-core';
import {
  initializers,
  input,
  type LayersModel,
  layers,
  loadLayersModel,
  model,
  type SymbolicTensor,
} from '@tensorflow/tfjs-layers';
import type { ConvShape, Decomposition, TargetLayer } from './strategy.js';
import { describeLayer } from './target.js';

/** A convolution to build for a test. */
export interface ConvSpec {
  inputShape: [number, number, number];
  filters: number;
  kernelSize: [number, number];
  strides?: [number, number];
  dilation?: [number, number];
  padding?: 'same' | 'valid';
  useBias?: boolean;
  activation?: 'linear' | 'relu';
}

/** A model `input → Conv2D` with seeded random weights (He-normal kernel), and that convolution as a `TargetLayer`. */
export function convTarget(spec: ConvSpec, seed = 1): { model: LayersModel; target: TargetLayer } {
  const conv = layers.conv2d({
    name: 'conv',
    filters: spec.filters,
    kernelSize: spec.kernelSize,
    strides: spec.strides ?? [1, 1],
    dilationRate: spec.dilation ?? [1, 1],
    padding: spec.padding ?? 'same',
    useBias: spec.useBias ?? true,
    activation: spec.activation ?? 'linear',
  });
  const x = input({ shape: spec.inputShape });
  const y = conv.apply(x) as ReturnType<typeof input>;
  const m = model({ inputs: x, outputs: y });
  // He-normal kernel (the scale of a trained or freshly initialised conv), small random bias.
  const fanIn = spec.kernelSize[0] * spec.kernelSize[1] * spec.inputShape[2];
  const scales = [Math.sqrt(2 / fanIn), 0.1];
  const weights = conv
    .getWeights()
    .map((w, i) => tf.randomNormal(w.shape, 0, scales[i], 'float32', seed + i));
  conv.setWeights(weights);
  tf.dispose(weights);
  return { model: m, target: describeLayer(m, 'conv') };
}

/** A Dense layer to build for a test. */
export interface DenseSpec {
  /** Input shape without the batch, e.g. `[64]` (or `[5, 64]` for a Dense applied at 5 positions). */
  inputShape: number[];
  units: number;
  useBias?: boolean;
  activation?: 'linear' | 'relu' | 'softmax' | 'tanh';
}

/** A model `input → Dense` with seeded random weights (Glorot-scale kernel), and that layer as a `TargetLayer`. */
export function denseTarget(spec: DenseSpec, seed = 1): { model: LayersModel; target: TargetLayer } {
  const dense = layers.dense({
    name: 'dense',
    units: spec.units,
    useBias: spec.useBias ?? true,
    activation: spec.activation ?? 'linear',
  });
  const x = input({ shape: spec.inputShape });
  const m = model({ inputs: x, outputs: dense.apply(x) as ReturnType<typeof input> });
  const fanIn = spec.inputShape[spec.inputShape.length - 1]!;
  const scales = [Math.sqrt(2 / (fanIn + spec.units)), 0.1];
  const weights = dense
    .getWeights()
    .map((w, i) => tf.randomNormal(w.shape, 0, scales[i], 'float32', seed + i));
  dense.setWeights(weights);
  tf.dispose(weights);
  return { model: m, target: describeLayer(m, 'dense') };
}

/** A model applying the decomposition's layers in order to an input of `inputShape`, with its weights set. */
export function decomposedModel(inputShape: number[], decomposition: Decomposition): LayersModel {
  const x = input({ shape: inputShape });
  let y = x;
  for (const layer of decomposition.layers) y = layer.apply(y) as typeof x;
  decomposition.layers.forEach((layer, i) => {
    const weights = decomposition.weights?.[i] ?? [];
    if (weights.length > 0) layer.setWeights(weights);
  });
  return model({ inputs: x, outputs: y });
}

/**
 * Gives every BatchNormalization of `model` seeded gamma and moving variance in [0.5, 1.5) and beta and moving
 * mean in [−0.5, 0.5), so that folding them (core's `inferenceModel`) is a real test.
 */
export function randomizeBatchNorms(model: LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const values = tf.tidy(() =>
      layer.weights.map((w) => {
        const draw = tf.randomUniform(w.shape as number[], 0, 1, 'float32', seed++);
        return /gamma|variance/.test(w.name) ? tf.add(draw, 0.5) : tf.sub(draw, 0.5);
      }),
    );
    layer.setWeights(values);
    tf.dispose(values);
  }
}

/** `net` saved to memory (JSON and weights) and loaded back with a plain `loadLayersModel`. */
export async function savedAndLoaded(net: LayersModel): Promise<LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await net.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return loadLayersModel(tf.io.fromMemory(saved!));
}

/** ‖a − b‖ / ‖b‖ over all elements. */
export function relativeDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.div(tf.norm(tf.sub(a, b)), tf.norm(b)).dataSync()[0]!);
}

/**
 * The `ConvShape` of a square k×k convolution with `same` padding and no dilation on a square input:
 * what cost tests and benchmarks describe without building a model.
 */
export function sameConvShape(
  inChannels: number,
  outChannels: number,
  kernel: number,
  stride: number,
  inputSize: number,
  useBias = false,
): ConvShape {
  const out = Math.ceil(inputSize / stride);
  return {
    kernelSize: [kernel, kernel],
    inChannels,
    outChannels,
    strides: [stride, stride],
    dilation: [1, 1],
    padding: 'same',
    useBias,
    inputSize: [inputSize, inputSize],
    outputSize: [out, out],
  };
}

/**
 * The standard deviation of `values` over He-normal's √(2 / fanIn): near 1 for a kernel initialised at the scale of
 * a He-normal (or trained) convolution, which decompositions built from scratch must keep.
 */
export function heScaleRatio(values: number[], fanIn: number): number {
  const std = Math.sqrt(values.reduce((sum, v) => sum + v * v, 0) / values.length);
  return std / Math.sqrt(2 / fanIn);
}

/** Seeded kernel and (non-zero) bias initialisers, so a test model's layers have weights worth comparing. */
function seededWeights(seed: number) {
  return {
    kernelInitializer: initializers.glorotNormal({ seed }),
    biasInitializer: initializers.randomNormal({ mean: 0, stddev: 0.1, seed: seed + 1 }),
  };
}

/**
 * A functional model `[12, 12, 4]` image → `sep1` (SeparableConv2D 3×3, depth multiplier 1, 8 filters, same, relu)
 * → `sep2` (3×3, depth multiplier 2, stride 2, 12 filters, same, relu) → `sep3` (3×3, depth multiplier 2, valid,
 * 6 filters, linear) with seeded weights and biases: what surgery's SeparableConv2D support is tested on.
 */
export function separableModel(seed = 1): LayersModel {
  const x = input({ shape: [12, 12, 4], name: 'image' });
  const separable = (name: string, i: number, args: Parameters<typeof layers.separableConv2d>[0]) => {
    const { kernelInitializer, biasInitializer } = seededWeights(seed + 10 * i);
    return layers.separableConv2d({
      name,
      depthwiseInitializer: kernelInitializer,
      pointwiseInitializer: initializers.glorotNormal({ seed: seed + 10 * i + 2 }),
      biasInitializer,
      ...args,
    });
  };
  let h = separable('sep1', 1, { filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x);
  h = separable('sep2', 2, {
    filters: 12,
    kernelSize: 3,
    strides: 2,
    depthMultiplier: 2,
    padding: 'same',
    activation: 'relu',
  }).apply(h);
  h = separable('sep3', 3, { filters: 6, kernelSize: 3, depthMultiplier: 2, padding: 'valid' }).apply(h);
  return model({ inputs: x, outputs: h as SymbolicTensor, name: 'separable' });
}

/**
 * A functional model over sequences `[32, 4]` (or of unknown length with `length: null`) → `c1` (Conv1D k=3, 8
 * filters, same, relu) → `c2` (k=3, stride 2, 8 filters, valid) → `c3` (k=3, dilation 2, 6 filters, same, relu),
 * and with `causal` a last `c4` (k=2, causal padding), with seeded weights and biases.
 */
export function conv1dModel(
  options: { seed?: number; length?: number | null; causal?: boolean } = {},
): LayersModel {
  const seed = options.seed ?? 1;
  const x = input({ shape: [options.length === undefined ? 32 : options.length, 4], name: 'sequence' });
  const conv = (name: string, i: number, args: Parameters<typeof layers.conv1d>[0]) =>
    layers.conv1d({ name, ...seededWeights(seed + 10 * i), ...args });
  let h = conv('c1', 1, { filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(x);
  h = conv('c2', 2, { filters: 8, kernelSize: 3, strides: 2, padding: 'valid' }).apply(h);
  h = conv('c3', 3, {
    filters: 6,
    kernelSize: 3,
    dilationRate: 2,
    padding: 'same',
    activation: 'relu',
  }).apply(h);
  if (options.causal === true) h = conv('c4', 4, { filters: 6, kernelSize: 2, padding: 'causal' }).apply(h);
  return model({ inputs: x, outputs: h as SymbolicTensor, name: 'sequence-model' });
}
