import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import {
  BATCH_NORM_TRAIN,
  BATCH_NORM_TRAIN_GRAD,
  type BatchNormTrainAttrs,
} from './kernels/batch-norm-train.js';
import { reluGradient } from './kernels/clip-grad.js';
import { callsOf, type ModelLayer } from './layer-graph.js';

/** Output of a training-mode batch normalisation and the batch statistics it used. */
export interface BatchNormTrainingResult {
  output: tf.Tensor;
  /** Per-channel batch mean. */
  mean: tf.Tensor1D;
  /** Per-channel biased batch variance (what tfjs-layers and Keras feed the moving average). */
  variance: tf.Tensor1D;
}

function hasKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

function leadingAxes(x: tf.Tensor): number[] {
  return Array.from({ length: x.rank - 1 }, (_, axis) => axis);
}

function forward(
  x: tf.Tensor,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  varianceEpsilon: number,
  relu: boolean,
): [tf.Tensor, tf.Tensor1D, tf.Tensor1D] {
  if (hasKernel(BATCH_NORM_TRAIN)) {
    const attrs: BatchNormTrainAttrs = { varianceEpsilon, relu };
    return tf
      .engine()
      .runKernel(BATCH_NORM_TRAIN, { x, scale, offset }, attrs as unknown as tf.NamedAttrMap) as [
      tf.Tensor,
      tf.Tensor1D,
      tf.Tensor1D,
    ];
  }
  const { mean, variance } = tf.moments(x, leadingAxes(x));
  const y = tf.batchNorm(x, mean, variance, offset, scale, varianceEpsilon);
  return [relu ? tf.relu(y) : y, mean as tf.Tensor1D, variance as tf.Tensor1D];
}

function backward(
  x: tf.Tensor,
  dy: tf.Tensor,
  mean: tf.Tensor1D,
  variance: tf.Tensor1D,
  scale: tf.Tensor1D,
  varianceEpsilon: number,
): tf.Tensor[] {
  if (hasKernel(BATCH_NORM_TRAIN_GRAD)) {
    const attrs: BatchNormTrainAttrs = { varianceEpsilon };
    return tf
      .engine()
      .runKernel(
        BATCH_NORM_TRAIN_GRAD,
        { x, dy, mean, variance, scale },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
  }
  // The same closed form as the kernel, as tfjs ops (other backends).
  const axes = leadingAxes(x);
  const count = x.size / mean.size;
  const inverseStd = tf.rsqrt(tf.add(variance, varianceEpsilon));
  const gain = tf.mul(scale, inverseStd);
  const centered = tf.sub(x, mean);
  const sumDy = tf.sum(dy, axes);
  const sumDyCentered = tf.sum(tf.mul(dy, centered), axes);
  const dx = tf.mul(
    gain,
    tf.sub(
      tf.sub(dy, tf.div(sumDy, count)),
      tf.mul(centered, tf.div(tf.mul(sumDyCentered, tf.square(inverseStd)), count)),
    ),
  );
  return [dx, tf.mul(sumDyCentered, inverseStd), sumDy];
}

/**
 * Training-mode batch normalisation over every axis but the last, as one differentiable op: normalises `x`
 * with its own batch mean and biased variance, then scales and shifts. Its gradient includes the batch
 * statistics' dependence on `x`, so it equals the gradient of tfjs-layers' composition (`tf.moments` then
 * `tf.batchNorm`) up to float rounding. On wasm both directions are single engine kernels; elsewhere tfjs ops.
 * With `relu`, the output is relu'd in the same pass, which saves the pass over the activations a separate relu
 * takes (its gradient masks dy by the output, as a relu's does). The caller disposes `mean` and `variance` (they
 * are kept out of any enclosing `tf.tidy`).
 */
export function batchNormTraining(
  x: tf.Tensor,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  varianceEpsilon: number,
  options: { relu?: boolean } = {},
): BatchNormTrainingResult {
  const relu = options.relu === true;
  let statistics: [tf.Tensor1D, tf.Tensor1D] | undefined;
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, gamma, beta, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [y, mean, variance] = forward(
      input,
      gamma as tf.Tensor1D,
      beta as tf.Tensor1D,
      varianceEpsilon,
      relu,
    );
    save(relu ? [input, mean, variance, gamma, y] : [input, mean, variance, gamma]);
    // customGrad runs this inside a tidy that keeps only `value`.
    statistics = [tf.keep(mean), tf.keep(variance)];
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [savedX, savedMean, savedVariance, savedScale, savedOutput] = saved as [
          tf.Tensor,
          tf.Tensor1D,
          tf.Tensor1D,
          tf.Tensor1D,
          tf.Tensor | undefined,
        ];
        const dyTensor = Array.isArray(dy) ? (dy[0] as tf.Tensor) : dy;
        const dyPre = savedOutput === undefined ? dyTensor : reluGradient(dyTensor, savedOutput);
        return backward(savedX, dyPre, savedMean, savedVariance, savedScale, varianceEpsilon);
      },
    };
  });
  const output = normalise(x, scale, offset);
  if (statistics === undefined) throw new Error('batchNormTraining: the forward pass did not run');
  const [mean, variance] = statistics;
  return { output, mean, variance };
}

/** The parts of tfjs-layers' `BatchNormalization` the fast training path reads and writes. */
interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: { read(): tf.Tensor } | null;
  beta: { read(): tf.Tensor } | null;
  movingMean: { read(): tf.Tensor; write(value: tf.Tensor): void };
  movingVariance: { read(): tf.Tensor; write(value: tf.Tensor): void };
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

const accelerated = new WeakSet<object>();

/** The stock layer's moving average: moving ← moving − (moving − batch)·(1 − momentum). */
function updateMovingAverage(
  variable: BatchNormLayer['movingMean'],
  batchValue: tf.Tensor,
  momentum: number,
): void {
  tf.tidy(() => {
    const current = variable.read();
    variable.write(tf.sub(current, tf.mul(tf.sub(current, batchValue), 1 - momentum)));
  });
}

/** Outputs of BatchNorm calls with a fused relu: the relu layer after such a call passes them on as they are. */
const reluApplied = new WeakSet<tf.Tensor>();

/** Whether `layer` is a plain relu: `Activation('relu')`, or `ReLU` without a cap. */
function isPlainRelu(layer: ModelLayer): boolean {
  const config = layer.getConfig();
  if (layer.getClassName() === 'Activation') return config.activation === 'relu';
  return layer.getClassName() === 'ReLU' && config.maxValue == null;
}

/**
 * The relu layer that alone reads `bn`'s output, if one does (and the output is not also a model output):
 * then the BatchNorm can apply the relu itself.
 */
function soleReluAfter(model: LayersModel, bn: ModelLayer): ModelLayer | undefined {
  const nodes = callsOf(bn);
  if (nodes.length !== 1) return undefined;
  const output = nodes[0]?.outputTensors[0];
  if (output === undefined || model.outputs.includes(output)) return undefined;
  const readers = model.layers.flatMap((layer) =>
    callsOf(layer)
      .filter((node) => node.inputTensors.includes(output))
      .map((node) => ({ layer, node })),
  );
  const [reader] = readers;
  if (readers.length !== 1 || reader === undefined) return undefined;
  const callsOfReader = callsOf(reader.layer).length;
  return isPlainRelu(reader.layer) && callsOfReader === 1 && reader.node.inputTensors.length === 1
    ? reader.layer
    : undefined;
}

/** Makes `relu`'s training-mode call pass on, as they are, inputs its BatchNorm already relu'd. */
function passFusedRelu(relu: ModelLayer): void {
  if (accelerated.has(relu)) return;
  accelerated.add(relu);
  const stockCall = relu.call.bind(relu);
  relu.call = (inputs, kwargs) => {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    if (kwargs.training === true && input !== undefined && reluApplied.has(input)) return input;
    return stockCall(inputs, kwargs);
  };
}

/**
 * Makes the training-mode call of every stock `BatchNormalization` layer of `model` that normalises the last
 * axis with both γ and β (the layers of CNNs) use {@link batchNormTraining}: the same outputs, moving-average
 * updates and gradients as the stock layer (to float rounding), in two kernels instead of about 25 ops. Where a
 * plain relu layer alone reads the BatchNorm's output (conv → BN → relu), the BatchNorm applies the relu in the
 * same pass and the relu layer passes its input on: the relu's own pass over the activations saved (its gradient
 * stays one pass, masking dy by the output). The layers stay
 * stock layers (class, config and weights), so saved models load anywhere; inference calls are untouched.
 * Idempotent. Returns the names of the BatchNorm layers it accelerated.
 */
export function accelerateBatchNormTraining(model: LayersModel): string[] {
  const names: string[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const bn = layer as unknown as BatchNormLayer;
    const lastAxis = bn.axis === -1 || bn.axis === (layer.inputSpec?.[0]?.ndim ?? 0) - 1;
    if (!lastAxis || !bn.center || !bn.scale || bn.gamma === null || bn.beta === null) continue;
    names.push(layer.name);
    if (accelerated.has(layer)) continue;
    accelerated.add(layer);
    const relu = soleReluAfter(model, layer);
    if (relu !== undefined) passFusedRelu(relu);
    const stockCall = bn.call.bind(layer);
    bn.call = (inputs, kwargs) => {
      const input = Array.isArray(inputs) ? inputs[0] : inputs;
      if (kwargs.training !== true || input === undefined || input.dtype !== 'float32') {
        return stockCall(inputs, kwargs);
      }
      const output = tf.tidy(() => {
        const { gamma, beta } = bn as { gamma: { read(): tf.Tensor }; beta: { read(): tf.Tensor } };
        const { output, mean, variance } = batchNormTraining(
          input,
          gamma.read() as tf.Tensor1D,
          beta.read() as tf.Tensor1D,
          bn.epsilon,
          { relu: relu !== undefined },
        );
        updateMovingAverage(bn.movingMean, mean, bn.momentum);
        updateMovingAverage(bn.movingVariance, variance, bn.momentum);
        tf.dispose([mean, variance]);
        return output;
      });
      if (relu !== undefined) reluApplied.add(output);
      return output;
    };
  }
  return names;
}
