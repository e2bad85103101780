// Helpers for testing a strategy: a one-convolution model described the way surgery offers it, the decomposed
// model built from a Decomposition, and a relative difference. Exported as `@decompose/core/testing`.

import * as tf from '@tensorflow/tfjs-core';
import { input, type LayersModel, layers, model } from '@tensorflow/tfjs-layers';
import type { Decomposition, TargetLayer } from './strategy.js';
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

/** A model applying the decomposition's layers in order to an input of `inputShape`, with its weights set. */
export function decomposedModel(
  inputShape: [number, number, number],
  decomposition: Decomposition,
): LayersModel {
  const x = input({ shape: inputShape });
  let y = x;
  for (const layer of decomposition.layers) y = layer.apply(y) as typeof x;
  decomposition.layers.forEach((layer, i) => {
    const weights = decomposition.weights?.[i] ?? [];
    if (weights.length > 0) layer.setWeights(weights);
  });
  return model({ inputs: x, outputs: y });
}

/** ‖a − b‖ / ‖b‖ over all elements. */
export function relativeDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.div(tf.norm(tf.sub(a, b)), tf.norm(b)).dataSync()[0]!);
}
