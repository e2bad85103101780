import * as tf from '@tensorflow/tfjs-core';
import { InvalidBatchError } from './errors.js';

/** What a classifier's output holds: raw scores, or probabilities from a final softmax. */
export type ModelOutputKind = 'logits' | 'probabilities';

// Probabilities are clipped away from 0 before the log so that a confident mistake gives a large finite loss.
const PROBABILITY_FLOOR = 1e-7;

/**
 * Mean softmax cross-entropy of `logits` ([batch, numClasses]) against integer `labels` ([batch], int32),
 * with label smoothing: the target puts `1 - labelSmoothing + labelSmoothing / numClasses` on the true class
 * and `labelSmoothing / numClasses` on every other (as `tf.losses.softmaxCrossEntropy` does).
 */
export function softmaxCrossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  numClasses: number,
  labelSmoothing: number,
): tf.Scalar {
  return crossEntropy(logits, labels, numClasses, labelSmoothing, 'logits');
}

/** Mean cross-entropy of a classifier output of either kind; see {@link softmaxCrossEntropy}. */
export function crossEntropy(
  output: tf.Tensor2D,
  labels: tf.Tensor1D,
  numClasses: number,
  labelSmoothing: number,
  kind: ModelOutputKind,
): tf.Scalar {
  checkLossInputs(output, labels, numClasses, labelSmoothing);
  return tf.tidy(() => {
    const logProbabilities =
      kind === 'logits' ? tf.logSoftmax(output) : tf.log(tf.clipByValue(output, PROBABILITY_FLOOR, 1));
    const oneHot = tf.cast(tf.oneHot(labels, numClasses), 'float32');
    const targets =
      labelSmoothing === 0 ? oneHot : tf.add(tf.mul(oneHot, 1 - labelSmoothing), labelSmoothing / numClasses);
    return tf.neg(tf.mean(tf.sum(tf.mul(targets, logProbabilities), -1))) as tf.Scalar;
  });
}

function checkLossInputs(
  output: tf.Tensor2D,
  labels: tf.Tensor1D,
  numClasses: number,
  labelSmoothing: number,
): void {
  if (output.rank !== 2 || output.shape[1] !== numClasses) {
    throw new InvalidBatchError(
      `Model output has shape [${output.shape.join(', ')}], expected [batch, ${numClasses}] (numClasses). ` +
        'Make the last layer produce one score per class.',
    );
  }
  if (labels.rank !== 1 || labels.shape[0] !== output.shape[0] || labels.dtype !== 'int32') {
    throw new InvalidBatchError(
      `Labels must be an int32 tensor of shape [${output.shape[0]}]; got ${labels.dtype} [${labels.shape.join(', ')}].`,
    );
  }
  const problem = labelSmoothingProblem(labelSmoothing);
  if (problem !== undefined) throw new InvalidBatchError(problem);
}

/** Why `labelSmoothing` is unusable, or undefined when it is in [0, 1). */
export function labelSmoothingProblem(labelSmoothing: number): string | undefined {
  return labelSmoothing >= 0 && labelSmoothing < 1
    ? undefined
    : `labelSmoothing must be in [0, 1); got ${labelSmoothing}.`;
}
