import { findBundledSubset, readCifar10, selectImages } from '@decompose/cifar10';
import { PluginImportError } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { estimateArmSeconds } from './arm.js';

beforeAll(async () => {
  await initEngine();
});

it("estimates an arm's fine-tune without touching the baseline or leaking tensors", async () => {
  const data = await readCifar10(findBundledSubset());
  const train = selectImages(
    data.train,
    Uint32Array.from({ length: 16 }, (_, i) => i),
  );
  const baseline = createCifarResNet({ arch: 'resnet20', seed: 1 });
  const before = baseline.getWeights().map((w) => w.dataSync().slice());
  const arm = {
    baseline,
    strategy: 'basis',
    layers: 'stage2.**',
    options: { ratio: 0.5 },
    seed: 0,
    recipe: { epochs: 3, batch: 8 },
    train,
  };
  await estimateArmSeconds(arm, 1); // kernels and buffers set up once
  const tensors = tf.memory().numTensors;
  const seconds = await estimateArmSeconds(arm, 1);
  expect(tf.memory().numTensors).toBe(tensors);
  expect(Number.isFinite(seconds) && seconds > 0).toBe(true);
  expect(baseline.getWeights().map((w) => w.dataSync())).toEqual(before);
  await expect(estimateArmSeconds({ ...arm, strategy: 'no-such-strategy' })).rejects.toBeInstanceOf(
    PluginImportError,
  );
  baseline.dispose();
});
