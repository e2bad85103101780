import { createBatchStream, findBundledSubset, readCifar10, selectImages } from '@decompose/cifar10';
import { applyStrategy, inferenceModel, reestimateBatchNorm } from '@decompose/core';
import { randomizeBatchNorms, relativeDifference } from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { measureModel } from './measure.js';
import { BUILT_IN_STRATEGIES } from './strategies.js';

const subset = findBundledSubset();

beforeAll(async () => {
  await initEngine();
});

it('measures a model without changing its weights (BatchNorm statistics included) or leaking tensors', async () => {
  const data = await readCifar10(subset);
  const test = selectImages(
    data.test,
    Uint32Array.from({ length: 8 }, (_, i) => i),
  );
  const model = createCifarResNet({ arch: 'resnet20', seed: 1 });
  const options = { evalBatch: 8, batch: 4, steps: 1, strategies: BUILT_IN_STRATEGIES };
  const before = model.getWeights().map((w) => w.dataSync().slice());
  const first = await measureModel(model, test, options);
  const tensors = tf.memory().numTensors;
  const second = await measureModel(model, test, options);
  expect(tf.memory().numTensors).toBe(tensors);
  expect(model.getWeights().map((w) => w.dataSync())).toEqual(before);
  expect(second.accuracy).toBe(first.accuracy);
  expect(first.params).toBe(model.countParams());
  expect(first.trainImagesPerSecond).toBeGreaterThan(0);
  expect(first.evalImagesPerSecond).toBeGreaterThan(0);
  model.dispose();
});

it.each(['dense', 'basis', 'svd'])(
  'measures on the eval path, which predicts as the trained graph on real test images (ResNet-20, %s 0.5)',
  async (name) => {
    const data = await readCifar10(subset);
    const test = selectImages(
      data.test,
      Uint32Array.from({ length: 64 }, (_, i) => i),
    );
    const [batch] = createBatchStream(test, { batchSize: 64, shuffle: false }).epoch(0);
    const images = tf.tensor4d(batch!.images, [batch!.count, 32, 32, 3]);
    const dense = createCifarResNet({ arch: 'resnet20', seed: 2 });
    const strategy = BUILT_IN_STRATEGIES.find((s) => s.name === name);
    const model = strategy
      ? applyStrategy(dense, strategy, { layers: '**', options: { ratio: 0.5 } }).model
      : dense;
    // Gamma and beta away from 1 and 0, the moving statistics measured on the images.
    randomizeBatchNorms(model, 3);
    reestimateBatchNorm(model, [images]);
    const { model: inference, folded, unfolded } = inferenceModel(model);
    expect(unfolded).toEqual([]);
    expect(folded.filter((f) => f.batchNorm !== null)).toHaveLength(19);
    const difference = tf.tidy(() =>
      relativeDifference(inference.predict(images) as tf.Tensor, model.predict(images) as tf.Tensor),
    );
    expect(difference).toBeLessThan(1e-4);
    tf.dispose(images);
    for (const m of new Set([inference, model, dense])) m.dispose();
  },
);
