import { decodeBatch, normalizeImages } from '@decompose/cifar10/browser';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { classify, maxProbabilityDifference, PREDICT_BATCH, weightBytes } from './classify.js';
import { syntheticBatch, tinyClassifier } from './test-helpers.js';

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
    const { classes, probabilities } = await classify(model, images);
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

  it('rejects input that is not whole images', async () => {
    const model = tinyClassifier();
    await expect(classify(model, new Float32Array(100))).rejects.toThrow(/not a multiple of 3072/);
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
