import { CIFAR10_IMAGE_SHAPE, decodeBatch, normalizeImages } from '@decompose/cifar10/browser';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { classify, maxProbabilityDifference, PREDICT_BATCH, weightBytes } from './classify.js';
import { SMALL_SHAPE, syntheticBatch, tinyClassifier } from './test-helpers.js';

/** Random normalised NHWC images of `shape`. */
function randomImages(count: number, shape: readonly number[]): Float32Array {
  return tf.tidy(() => tf.randomNormal([count, ...shape], 0, 1, 'float32', 3).dataSync() as Float32Array);
}

beforeAll(async () => {
  await initEngine();
});

describe('classify', () => {
  it('returns softmax rows and their argmax, the same as one predict over all images, leaving no tensor', async () => {
    const model = tinyClassifier();
    const count = PREDICT_BATCH + 3; // two batches, the second partial
    const images = normalizeImages(
      decodeBatch(syntheticBatch(Array.from({ length: count }, (_, i) => i % 10))).images,
    );
    const before = tf.memory().numTensors;
    const { classes, probabilities } = await classify(model, images, CIFAR10_IMAGE_SHAPE);
    expect(tf.memory().numTensors).toBe(before);
    const expected = tf.tidy(() =>
      tf.softmax(model.predict(tf.tensor4d(images, [count, 32, 32, 3])) as tf.Tensor).arraySync(),
    ) as number[][];
    expect(probabilities).toHaveLength(count);
    expect(maxProbabilityDifference(probabilities, expected)).toBeLessThan(1e-6);
    probabilities.forEach((row, i) => {
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(classes[i]).toBe(row.indexOf(Math.max(...row)));
    });
    model.dispose();
  });

  it('takes the geometry it is given: 24×24×3 images into 3 classes, the same as one predict, leaving no tensor', async () => {
    const model = tinyClassifier(SMALL_SHAPE, 3);
    const count = PREDICT_BATCH + 5;
    const images = randomImages(count, SMALL_SHAPE);
    const before = tf.memory().numTensors;
    for (let repeat = 0; repeat < 2; repeat++) {
      const { classes, probabilities } = await classify(model, images, SMALL_SHAPE);
      expect(tf.memory().numTensors).toBe(before);
      const expected = tf.tidy(() =>
        tf.softmax(model.predict(tf.tensor4d(images, [count, ...SMALL_SHAPE])) as tf.Tensor).arraySync(),
      ) as number[][];
      expect(probabilities.map((row) => row.length)).toEqual(Array(count).fill(3));
      expect(maxProbabilityDifference(probabilities, expected)).toBeLessThan(1e-6);
      expect(classes).toEqual(expected.map((row) => row.indexOf(Math.max(...row))));
    }
    model.dispose();
  });

  it('rejects input that is not whole images of the shape', async () => {
    const model = tinyClassifier();
    await expect(classify(model, new Float32Array(100), CIFAR10_IMAGE_SHAPE)).rejects.toThrow(
      /whole 32×32×3 images, but its length 100 is not a multiple of 3072/,
    );
    await expect(classify(model, new Float32Array(3072), SMALL_SHAPE)).rejects.toThrow(
      /whole 24×24×3 images, but its length 3072 is not a multiple of 1728/,
    );
    model.dispose();
  });
});

describe('weightBytes', () => {
  it('counts four bytes per parameter', () => {
    const model = tinyClassifier();
    expect(weightBytes(model)).toBe(4 * model.countParams());
    model.dispose();
  });
});

describe('maxProbabilityDifference', () => {
  it('is the largest absolute difference, and NaN when the second set is shorter', () => {
    expect(maxProbabilityDifference([[0.2, 0.8]], [[0.25, 0.75]])).toBeCloseTo(0.05, 10);
    expect(
      maxProbabilityDifference(
        [
          [0.5, 0.5],
          [1, 0],
        ],
        [[0.5, 0.5]],
      ),
    ).toBeNaN();
  });
});
