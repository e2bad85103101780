import { describeLayer, type TargetLayer } from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import { initializers, input, layers, model, type SymbolicTensor } from '@tensorflow/tfjs-layers';

/** Relative Frobenius distance ‖a − b‖ / ‖b‖. */
export function relativeDifference(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.norm(tf.sub(a, b)).dataSync()[0]! / tf.norm(b).dataSync()[0]!);
}

/**
 * A Conv2D with random kernel and bias inside a one-layer model on `size × size` inputs, and the
 * `TargetLayer` core's `describeLayer` makes of it.
 */
export function randomConv(args: {
  inChannels: number;
  filters: number;
  kernelSize?: number;
  strides?: number;
  padding?: 'same' | 'valid';
  size?: number;
  seed?: number;
}): { layer: layers.Layer; target: TargetLayer } {
  const size = args.size ?? 8;
  const seed = args.seed ?? 1;
  const layer = layers.conv2d({
    filters: args.filters,
    kernelSize: args.kernelSize ?? 3,
    strides: args.strides ?? 1,
    padding: args.padding ?? 'same',
    kernelInitializer: initializers.heNormal({ seed }),
    biasInitializer: initializers.randomNormal({ seed: seed + 7, stddev: 0.1 }),
  });
  const x = input({ shape: [size, size, args.inChannels] });
  const net = model({ inputs: x, outputs: layer.apply(x) as SymbolicTensor });
  return { layer, target: describeLayer(net, layer) };
}
