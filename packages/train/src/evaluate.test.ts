import { createBatchStream } from '@decompose/cifar10';
import { initEngine, softmaxCrossEntropy } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from './evaluate.js';
import { syntheticImages, tinyModel } from './test-fixtures.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

describe('evaluate', () => {
  const data = syntheticImages(30);

  it('gives the loss and accuracy of the whole set, whatever the batch size', async () => {
    const model = tinyModel();
    const [whole] = [...createBatchStream(data, { batchSize: 30, shuffle: false }).epoch(0)];
    const [loss, predictions] = tf.tidy(() => {
      const logits = model.predict(tf.tensor4d(whole!.images, [30, 32, 32, 3])) as tf.Tensor2D;
      return [
        softmaxCrossEntropy(logits, tf.tensor1d(whole!.labels, 'int32'), 10, 0).dataSync()[0]!,
        tf.argMax(logits, -1).dataSync(),
      ];
    });
    const correct = whole!.labels.filter((label, i) => predictions[i] === label).length;

    const result = await evaluate(model, data, 8);
    expect(result.count).toBe(30);
    expect(result.loss).toBeCloseTo(loss, 5);
    expect(result.accuracy).toBe(correct / 30);
    expect(result.imagesPerSecond).toBeGreaterThan(0);
  });

  it('runs in inference mode (BatchNorm statistics unchanged) and leaks no tensors', async () => {
    const model = tinyModel();
    const statistics = () =>
      model
        .getLayer('bn')
        .getWeights()
        .map((w) => Array.from(w.dataSync()));
    const before = statistics();
    await evaluate(model, data, 16);
    const tensors = tf.memory().numTensors;
    await evaluate(model, data, 16);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(statistics()).toEqual(before);
  });
});
