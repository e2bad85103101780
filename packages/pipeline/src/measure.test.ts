import { findBundledSubset, readCifar10, selectImages } from '@decompose/cifar10';
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
