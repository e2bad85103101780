import {
  CIFAR10_CLASS_NAMES,
  CIFAR10_IMAGE_SHAPE,
  classNamesOf,
  createBatchStream,
  type ImageSet,
  imageShapeOf,
} from '@decompose/cifar10';
import { type GradientComputer, softmaxCrossEntropy } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { InvalidTrainingOptionError, ModelDataMismatchError } from './errors.js';

/** Loss and accuracy of a model over a data set. */
export interface EvaluationResult {
  /** Mean softmax cross-entropy (no label smoothing). */
  loss: number;
  /** Fraction of top-1 predictions that are right, in [0, 1]. */
  accuracy: number;
  /** Images evaluated. */
  count: number;
  /** Wall-clock seconds the evaluation took. */
  seconds: number;
  /** Throughput: `count / seconds`. */
  imagesPerSecond: number;
}

/**
 * The model's input shape without the batch dimension, and its number of classes, checked against the
 * images it would be fed: `data`'s shape and class count (CIFAR-10's 32×32×3 and 10 classes when `data`
 * gives none, or when there is no `data`), so that a model built for other images fails before any work
 * with a message naming both, not inside a tfjs reshape.
 *
 * @param dataName - names the data in the error (default: `CIFAR-10` for a set without class names, else
 *   `the data set`).
 * @throws InvalidTrainingOptionError for a model without one known-shape input and one [batch, classes]
 *   output; ModelDataMismatchError for a model whose input or class count is not the data's.
 */
export function modelGeometry(
  model: LayersModel,
  data?: ImageSet,
  dataName?: string,
): { exampleShape: number[]; numClasses: number } {
  const inputShape = model.inputs[0]?.shape ?? [];
  const outputShape = model.outputs[0]?.shape ?? [];
  const exampleShape = inputShape.slice(1);
  const numClasses = outputShape[outputShape.length - 1];
  if (
    model.inputs.length !== 1 ||
    model.outputs.length !== 1 ||
    exampleShape.some((d) => d === null) ||
    outputShape.length !== 2 ||
    typeof numClasses !== 'number'
  ) {
    throw new InvalidTrainingOptionError(
      'model',
      `expected one input of known shape and one [batch, classes] output; got input [${inputShape.join(', ')}], ` +
        `output [${outputShape.join(', ')}]`,
    );
  }
  const imageShape = data ? imageShapeOf(data) : CIFAR10_IMAGE_SHAPE;
  const dataClasses = data ? classNamesOf(data).length : CIFAR10_CLASS_NAMES.length;
  if (exampleShape.join() !== imageShape.join() || numClasses !== dataClasses) {
    throw new ModelDataMismatchError(
      model.name,
      exampleShape as number[],
      numClasses,
      imageShape,
      dataClasses,
      dataName ?? (data?.classNames === undefined ? 'CIFAR-10' : 'the data set'),
    );
  }
  return { exampleShape: exampleShape as number[], numClasses };
}

/** Where {@link evaluate} runs the model. */
export interface EvaluateOptions {
  /**
   * A gradient computer created for the same model (as `train` creates one): each batch then runs through
   * its `predict`, which with workers splits the batch over them, each with the model's current weights and
   * BatchNorm moving statistics. Without it, `model.predict` runs on this thread.
   */
  computer?: GradientComputer;
}

/**
 * Evaluates `model` in inference mode (BatchNorm uses its moving statistics) on `data` (of any image shape
 * the model takes), normalised the way `@decompose/cifar10` normalises training batches (the data's mean/std), in batches of `batchSize` images; on this thread, or
 * over `options.computer`'s workers.
 */
export async function evaluate(
  model: LayersModel,
  data: ImageSet,
  batchSize: number,
  options: EvaluateOptions = {},
): Promise<EvaluationResult> {
  const { exampleShape, numClasses } = modelGeometry(model, data);
  const { computer } = options;
  const stream = createBatchStream(data, { batchSize, shuffle: false, augment: false });
  const started = performance.now();
  let lossSum = 0;
  let correct = 0;
  for (const batch of stream.epoch(0)) {
    const predicted = computer ? await computer.predict(batch) : undefined;
    const [loss, hits] = tf.tidy(() => {
      const labels = tf.tensor1d(batch.labels, 'int32');
      // The whole batch in one call (predict's default cuts it into batches of 32).
      const logits = predicted
        ? tf.tensor2d(predicted, [batch.count, numClasses])
        : (model.predict(tf.tensor(batch.images, [batch.count, ...exampleShape], 'float32'), {
            batchSize: batch.count,
          }) as tf.Tensor2D);
      const batchLoss = softmaxCrossEntropy(logits, labels, numClasses, 0);
      const batchHits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), labels), 'int32'));
      return [batchLoss, batchHits];
    });
    const [lossValue] = await loss.data();
    const [hitCount] = await hits.data();
    tf.dispose([loss, hits]);
    lossSum += (lossValue ?? Number.NaN) * batch.count;
    correct += hitCount ?? 0;
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    loss: lossSum / data.count,
    accuracy: correct / data.count,
    count: data.count,
    seconds,
    imagesPerSecond: data.count / seconds,
  };
}
