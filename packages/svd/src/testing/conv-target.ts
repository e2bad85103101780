// Test helpers: a one-convolution model with random weights, described the way surgery offers it (describeLayer).
import { type Decomposition, describeLayer, type TargetLayer } from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import { input, type LayersModel, layers, model } from '@tensorflow/tfjs-layers';

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

/** A model `input → Conv2D` with seeded random weights, and that convolution as a `TargetLayer`. */
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
  const weights = conv.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.5, 'float32', seed + i));
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
  return tf.tidy(() => tf.norm(tf.sub(a, b)).div(tf.norm(b)).dataSync()[0]!);
}
