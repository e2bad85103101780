import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, LayerVariable } from '@tensorflow/tfjs-layers';
import { accelerateBatchNormTraining } from '../batch-norm-training.js';
import { skipInputGradients } from '../input-convolutions.js';
import type { ImageBatch, TrainingBatch } from './batch.js';
import { crossEntropy, type ModelOutputKind } from './loss.js';

/** How the loss is computed from a model's output. */
export interface LossSettings {
  numClasses: number;
  labelSmoothing: number;
  output: ModelOutputKind;
}

/** Loss, accuracy and gradients of one batch. */
export interface GradientResult {
  /** Mean loss over the batch (softmax cross-entropy with label smoothing). */
  loss: number;
  /** Number of correct top-1 predictions in the batch. */
  correct: number;
  /** One per `model.trainableWeights`, same order, of the mean loss (so averaged over the batch). */
  gradients: Float32Array[];
}

/** Whether a model ends in a softmax (then its outputs are probabilities) or not (logits). */
export function outputKindOf(model: LayersModel): ModelOutputKind {
  const last = model.layers[model.layers.length - 1];
  if (last === undefined) return 'logits';
  const activation = last.getConfig().activation;
  return last.getClassName() === 'Softmax' || activation === 'softmax' ? 'probabilities' : 'logits';
}

/**
 * Runs `model` in training mode on a validated batch of examples shaped `exampleShape`, and returns the mean
 * loss, the number of correct predictions and the gradients of the trainable weights. Like `model.fit`, the
 * training-mode call updates BatchNorm moving statistics. BatchNorm layers train through the engine's fused
 * op ({@link accelerateBatchNormTraining}), and convolutions of the images skip their input gradient
 * ({@link skipInputGradients}).
 */
export function trainingStep(
  model: LayersModel,
  batch: TrainingBatch,
  exampleShape: readonly number[],
  settings: LossSettings,
): GradientResult {
  accelerateBatchNormTraining(model);
  skipInputGradients(model);
  const trainable = model.trainableWeights;
  let output: tf.Tensor2D | undefined;
  const { value, grads } = tf.tidy(() => {
    const images = tf.tensor(batch.images, [batch.count, ...exampleShape], 'float32');
    const labels = tf.tensor1d(batch.labels, 'int32');
    return tf.variableGrads(() => {
      const result = model.apply(images, { training: true }) as tf.Tensor2D;
      output = tf.keep(result);
      return crossEntropy(result, labels, settings.numClasses, settings.labelSmoothing, settings.output);
    }, trainable.map(variableOf));
  });
  try {
    const predicted = tf.argMax(output as tf.Tensor2D, -1);
    const predictions = predicted.dataSync();
    predicted.dispose();
    let correct = 0;
    for (let i = 0; i < batch.count; i++) if (predictions[i] === batch.labels[i]) correct++;
    const gradients = trainable.map((weight) => {
      const gradient = grads[variableOf(weight).name];
      // A weight the loss does not reach (e.g. a dead branch) has no gradient: it is zero.
      return gradient
        ? (gradient.dataSync() as Float32Array)
        : new Float32Array(tf.util.sizeFromShape(weight.shape as number[]));
    });
    return { loss: value.dataSync()[0] ?? Number.NaN, correct, gradients };
  } finally {
    tf.dispose([value, output as tf.Tensor, ...Object.values(grads)]);
  }
}

/**
 * Runs `model` in inference mode (BatchNorm normalises with its moving statistics, which stay as they are) on
 * a validated batch of examples shaped `exampleShape`, and returns its outputs, `count` rows back to back.
 */
export function inferenceStep(
  model: LayersModel,
  batch: ImageBatch,
  exampleShape: readonly number[],
): Float32Array {
  return tf.tidy(() => {
    const images = tf.tensor(batch.images, [batch.count, ...exampleShape], 'float32');
    // The whole batch in one call (predict's default would cut it into batches of 32).
    const output = model.predict(images, { batchSize: batch.count }) as tf.Tensor;
    return output.dataSync() as Float32Array;
  });
}

/** The core variable behind a layers weight (what `tf.variableGrads` differentiates with respect to). */
function variableOf(weight: LayerVariable): tf.Variable {
  const variable = weight.read();
  if (!(variable instanceof tf.Variable)) {
    throw new TypeError(`Weight '${weight.originalName}' is not backed by a tf.Variable.`);
  }
  return variable;
}
