import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { callsOf } from './layer-graph.js';

/** The parts of tfjs-layers' `Conv2D` the weights-only training call reads. */
interface Conv2DLayer {
  name: string;
  rank: number;
  kernel: { read(): tf.Tensor };
  bias: { read(): tf.Tensor } | null | undefined;
  strides: number[];
  padding: string;
  dataFormat: string;
  dilationRate: number | number[];
  activation: { apply(x: tf.Tensor): tf.Tensor };
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

const patched = new WeakSet<object>();

/**
 * The symbolic tensors of `model` that depend on no trainable weight: its inputs, and the outputs of calls of
 * layers without trainable weights (padding, rescaling, frozen layers) on such tensors.
 */
function weightFreeTensors(model: LayersModel): Set<SymbolicTensor> {
  const free = new Set<SymbolicTensor>(model.inputs);
  let grew = true;
  while (grew) {
    grew = false;
    for (const layer of model.layers) {
      if (layer.trainableWeights.length > 0) continue;
      for (const node of callsOf(layer)) {
        if (!node.inputTensors.every((t) => free.has(t))) continue;
        for (const output of node.outputTensors) {
          if (free.has(output)) continue;
          free.add(output);
          grew = true;
        }
      }
    }
  }
  return free;
}

/**
 * Makes the training-mode call of every stock, channels-last `Conv2D` layer of `model` whose input depends on no
 * trainable weight (the model's input, directly or through layers without trainable weights: a CNN's stem) skip
 * its input gradient, which training never reads. tfjs-layers runs such a convolution through
 * `tf.fused.conv2d`, whose custom gradient (for a linear activation) computes the input's gradient with the
 * filter's whether anything needs it or not: 2 % of a CIFAR ResNet-20 train step on wasm, and more for wide
 * stems. The call runs `tf.conv2d`, the bias and the activation as separate ops instead, whose gradients tfjs
 * computes only towards the weights. Same outputs to float rounding; the layers stay stock `Conv2D` layers
 * (class, config and weights); inference calls are untouched. Idempotent. Returns the names of the layers it
 * changed.
 */
export function skipInputGradients(model: LayersModel): string[] {
  const free = weightFreeTensors(model);
  const names: string[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'Conv2D') continue;
    const conv = layer as unknown as Conv2DLayer;
    const nodes = callsOf(layer);
    const inputFree = nodes.length > 0 && nodes.every((node) => node.inputTensors.every((t) => free.has(t)));
    if (!inputFree || conv.rank !== 2 || conv.dataFormat !== 'channelsLast') continue;
    names.push(conv.name);
    if (patched.has(layer)) continue;
    patched.add(layer);
    const stockCall = conv.call.bind(layer);
    conv.call = (inputs, kwargs) => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      if (kwargs.training !== true || x === undefined) return stockCall(inputs, kwargs);
      return tf.tidy(() => {
        const y = tf.conv2d(
          x as tf.Tensor4D,
          conv.kernel.read() as tf.Tensor4D,
          conv.strides as [number, number],
          conv.padding as 'same' | 'valid',
          'NHWC',
          conv.dilationRate as number | [number, number],
        );
        return conv.activation.apply(conv.bias == null ? y : tf.add(y, conv.bias.read()));
      });
    };
  }
  return names;
}
