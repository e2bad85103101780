import { type Cifar10Images, createBatchStream } from '@decompose/cifar10';
import { costTable, type DecompositionStrategy, inferenceModel } from '@decompose/core';
import { createGradientComputer, type TrainingBatch } from '@decompose/engine';
import { evaluate, modelGeometry } from '@decompose/train';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** What the leaderboard shows for one model. */
export interface ModelMeasurement {
  /** Test accuracy in [0, 1] and mean test loss (of the eval path: core's `inferenceModel`). */
  accuracy: number;
  loss: number;
  params: number;
  /** Forward multiply-adds per image (core's cost table). */
  forwardMacs: number;
  /** Measured forward+backward (gradient) images per second, batch `measure.batch`. */
  trainImagesPerSecond: number;
  /**
   * Measured inference images per second on the eval path (core's `inferenceModel`: BatchNorms folded into the
   * layers before them, the basis layers and SVD pairs included, activations fused), whole batches.
   */
  evalImagesPerSecond: number;
}

/** Seconds of `steps` inference passes over `batch`, after a warm-up. */
async function timedInference(
  inference: tfl.LayersModel,
  batch: { images: Float32Array; count: number },
  exampleShape: readonly number[],
  steps: number,
): Promise<number> {
  const input = tf.tensor(batch.images, [batch.count, ...exampleShape], 'float32');
  try {
    return await timedSeconds(async () => {
      const logits = inference.predict(input, { batchSize: batch.count }) as tf.Tensor;
      await logits.data();
      logits.dispose();
    }, steps);
  } finally {
    input.dispose();
  }
}

async function timedSeconds(run: () => Promise<void>, steps: number): Promise<number> {
  await run(); // warm-up: kernels compiled, buffers allocated
  const started = performance.now();
  for (let i = 0; i < steps; i++) await run();
  return (performance.now() - started) / 1000;
}

/**
 * Images per second of `steps` gradient computations of `model` on `batch` in this thread, after a warm-up. The
 * model's weights (BatchNorm statistics included) are left as they were.
 */
export async function trainImagesPerSecond(
  model: tfl.LayersModel,
  batch: TrainingBatch,
  steps: number,
  numClasses: number,
): Promise<number> {
  // Gradient steps update BatchNorm's moving statistics: keep a copy of the weights to put back.
  const weights = model.getWeights().map((w) => w.clone());
  const computer = await createGradientComputer({ model, workers: 0, numClasses });
  try {
    return (batch.count * steps) / (await timedSeconds(() => computer.compute(batch).then(() => {}), steps));
  } finally {
    await computer.close();
    model.setWeights(weights);
    tf.dispose(weights);
  }
}

/**
 * Test accuracy, cost table totals and measured throughput of `model` on the active backend: `steps` timed
 * gradient computations and inference passes on a batch of real images, after one warm-up of each. Accuracy and
 * inference run on the eval path (core's `inferenceModel`), the gradients on the model itself. The model's
 * weights (BatchNorm statistics included) are left as they were.
 */
export async function measureModel(
  model: tfl.LayersModel,
  test: Cifar10Images,
  options: { evalBatch: number; batch: number; steps: number; strategies: readonly DecompositionStrategy[] },
): Promise<ModelMeasurement> {
  // Of the test images' shape and classes (an image folder's, not only CIFAR-10's); a model built for other
  // images is refused here, naming both.
  const { exampleShape, numClasses } = modelGeometry(model, test);
  const cost = costTable(model, { strategies: options.strategies }).total;
  const [first] = createBatchStream(test, { batchSize: options.batch, shuffle: false }).epoch(0);
  if (first === undefined) throw new RangeError('measureModel needs at least one test image');
  const batch = { images: first.images.slice(), labels: first.labels.slice(), count: first.count };
  // Accuracy and eval speed of the model as deployed (the eval path); training time of the trained graph.
  const inference = inferenceModel(model).model;
  let accuracy: number;
  let loss: number;
  let evalSeconds: number;
  try {
    ({ accuracy, loss } = await evaluate(inference, test, options.evalBatch));
    evalSeconds = await timedInference(inference, batch, exampleShape, options.steps);
  } finally {
    inference.dispose();
  }
  const trainPerSecond = await trainImagesPerSecond(model, batch, options.steps, numClasses);
  const images = batch.count * options.steps;
  return {
    accuracy,
    loss,
    params: cost.params,
    forwardMacs: cost.forwardMacs,
    trainImagesPerSecond: trainPerSecond,
    evalImagesPerSecond: images / evalSeconds,
  };
}
