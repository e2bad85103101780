import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { InvalidBatchError } from './errors.js';
import { crossEntropy, softmaxCrossEntropy } from './loss.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

describe('softmaxCrossEntropy', () => {
  const logitRows = [
    [2, -1, 0.5],
    [0, 0, 3],
  ];
  const labelValues = [0, 1];

  function expectedLoss(smoothing: number): number {
    let total = 0;
    logitRows.forEach((row, i) => {
      const logSum = Math.log(row.reduce((sum, z) => sum + Math.exp(z), 0));
      row.forEach((z, k) => {
        const target = (k === labelValues[i] ? 1 - smoothing : 0) + smoothing / row.length;
        total -= target * (z - logSum);
      });
    });
    return total / logitRows.length;
  }

  it.each([0, 0.1])(
    'is the mean cross-entropy against smoothed one-hot targets (smoothing %s)',
    (smoothing) => {
      const loss = tf.tidy(() =>
        softmaxCrossEntropy(
          tf.tensor2d(logitRows),
          tf.tensor1d(labelValues, 'int32'),
          3,
          smoothing,
        ).dataSync(),
      );
      expect(loss[0]).toBeCloseTo(expectedLoss(smoothing), 5);
    },
  );

  it('agrees with the cross-entropy of the softmax probabilities', () => {
    const [fromLogits, fromProbabilities] = tf.tidy(() => {
      const logits = tf.tensor2d(logitRows);
      const labels = tf.tensor1d(labelValues, 'int32');
      return [
        crossEntropy(logits, labels, 3, 0.1, 'logits').dataSync()[0],
        crossEntropy(tf.softmax(logits), labels, 3, 0.1, 'probabilities').dataSync()[0],
      ];
    });
    expect(fromProbabilities).toBeCloseTo(fromLogits ?? Number.NaN, 5);
  });

  it('rejects outputs that do not have one score per class, and float labels', () => {
    tf.tidy(() => {
      const logits = tf.tensor2d(logitRows);
      expect(() => softmaxCrossEntropy(logits, tf.tensor1d(labelValues, 'int32'), 4, 0)).toThrow(
        InvalidBatchError,
      );
      expect(() => softmaxCrossEntropy(logits, tf.tensor1d(labelValues, 'float32'), 3, 0)).toThrow(/int32/);
      expect(() => softmaxCrossEntropy(logits, tf.tensor1d(labelValues, 'int32'), 3, 1)).toThrow(
        /labelSmoothing/,
      );
    });
  });
});
