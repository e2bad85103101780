import { type Cifar10Images, createBatchStream } from '@decompose/cifar10';
import { costTable, type DecompositionStrategy, foldBatchNorm } from '@decompose/core';
import { createGradientComputer } from '@decompose/engine';
import { evaluate, modelGeometry } from '@decompose/train';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** What the leaderboard shows for one model. */
export interface ModelMeasurement {
  /** Test accuracy in [0, 1] and mean test loss. */
  accuracy: number;
  loss: number;
  params: number;
  /** Forward multiply-adds per image (core's cost table). */
  forwardMacs: number;
  /** Measured forward+backward (gradient) images per second, batch `measure.batch`. */
  trainImagesPerSecond: number;
  /** Measured inference images per second (BatchNorms folded into the convolutions, whole batches). */
  evalImagesPerSecond: number;
}

async function timedSeconds(run: () => Promise<void>, steps: number): Promise<number> {
  await run(); // warm-up: kernels compiled, buffers allocated
  const started = performance.now();
  for (let i = 0; i < steps; i++) await run();
  return (performance.now() - started) / 1000;
}

/**
 * Test accuracy, cost table totals and measured throughput of `model` on the active backend: `steps` timed
 * gradient computations and inference passes on a batch of real images, after one warm-up of each. The model's
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
  const { accuracy, loss } = await evaluate(model, test, options.evalBatch);
  const cost = costTable(model, { strategies: options.strategies }).total;
  const [first] = createBatchStream(test, { batchSize: options.batch, shuffle: false }).epoch(0);
  if (first === undefined) throw new RangeError('measureModel needs at least one test image');
  const batch = { images: first.images.slice(), labels: first.labels.slice(), count: first.count };
  // Gradient steps update BatchNorm's moving statistics: keep a copy of the weights to put back.
  const weights = model.getWeights().map((w) => w.clone());
  const computer = await createGradientComputer({ model, workers: 0, numClasses });
  let trainSeconds: number;
  try {
    trainSeconds = await timedSeconds(async () => {
      await computer.compute(batch);
    }, options.steps);
  } finally {
    await computer.close();
    model.setWeights(weights);
    tf.dispose(weights);
  }
  const [height, width, channels] = exampleShape as [number, number, number];
  const input = tf.tensor4d(batch.images, [batch.count, height, width, channels]);
  // Inference as deployed: BatchNorms folded into the convolutions before them.
  const inference = foldBatchNorm(model);
  const evalSeconds = await timedSeconds(async () => {
    const logits = inference.predict(input, { batchSize: batch.count }) as tf.Tensor;
    await logits.data();
    logits.dispose();
  }, options.steps);
  inference.dispose();
  input.dispose();
  const images = batch.count * options.steps;
  return {
    accuracy,
    loss,
    params: cost.params,
    forwardMacs: cost.forwardMacs,
    trainImagesPerSecond: images / trainSeconds,
    evalImagesPerSecond: images / evalSeconds,
  };
}
