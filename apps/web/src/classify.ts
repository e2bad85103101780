import type { ImageShape } from '@decompose/cifar10/browser';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** What a model predicts for a set of images. */
export interface Predictions {
  /** The most probable class of each image. */
  classes: number[];
  /** Softmax probabilities, one row of `numClasses` per image. */
  probabilities: number[][];
}

/** Images per `predict` call: large enough to amortise the call, small enough for a browser tab. */
export const PREDICT_BATCH = 32;

const valuesPer = ([height, width, channels]: ImageShape) => height * width * channels;

/** How many images of `shape` `images` holds. */
export function countImages(images: Float32Array, shape: ImageShape): number {
  const size = valuesPer(shape);
  if (images.length % size !== 0) {
    throw new RangeError(
      `images must hold whole ${shape.join('×')} images, but its length ${images.length} is not a multiple of ${size}`,
    );
  }
  return images.length / size;
}

/**
 * Classifies normalised NHWC images of `shape` (`count × height × width × channels` floats, the geometry of
 * the site's `images.json`) in one `predict` call, with a model whose output is logits (as `@decompose/resnet`
 * builds them): classes and softmax probabilities. Leaves no tensor.
 */
export async function classifyBatch(
  model: LayersModel,
  images: Float32Array,
  shape: ImageShape,
): Promise<Predictions> {
  const count = countImages(images, shape);
  const probs = tf.tidy(() => tf.softmax(model.predict(tf.tensor4d(images, [count, ...shape])) as tf.Tensor));
  const probabilities = (await probs.array()) as number[][];
  probs.dispose();
  return { classes: probabilities.map((row) => row.indexOf(Math.max(...row))), probabilities };
}

/** The images `[start, start + PREDICT_BATCH)` of `images` of `shape` (fewer at the end). */
export function batchAt(images: Float32Array, start: number, shape: ImageShape): Float32Array {
  const size = valuesPer(shape);
  return images.subarray(start * size, (start + PREDICT_BATCH) * size);
}

/** {@link classifyBatch} over any number of images of `shape`, {@link PREDICT_BATCH} at a time. */
export async function classify(
  model: LayersModel,
  images: Float32Array,
  shape: ImageShape,
): Promise<Predictions> {
  const count = countImages(images, shape);
  const all: Predictions = { classes: [], probabilities: [] };
  for (let start = 0; start < count; start += PREDICT_BATCH) {
    const { classes, probabilities } = await classifyBatch(model, batchAt(images, start, shape), shape);
    all.classes.push(...classes);
    all.probabilities.push(...probabilities);
  }
  return all;
}

/** Bytes of a model's weights (what `weights.bin` holds): every weight's element count × 4 (float32). */
export function weightBytes(model: LayersModel): number {
  return model.weights.reduce((total, weight) => total + weight.read().size * 4, 0);
}

/**
 * The largest absolute difference between two sets of probability rows over their common images and
 * classes; NaN (which fails every comparison) when a row or class of `a` is missing from `b`.
 */
export function maxProbabilityDifference(a: readonly number[][], b: readonly number[][]): number {
  let max = 0;
  a.forEach((row, i) => {
    row.forEach((p, c) => {
      max = Math.max(max, Math.abs(p - (b[i]?.[c] ?? Number.NaN)));
    });
  });
  return max;
}
