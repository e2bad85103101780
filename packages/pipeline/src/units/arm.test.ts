import { findBundledSubset, readCifar10, selectImages } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { localExecutor } from '@decompose/jobs';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { packImageSet } from '../image-sets.js';
import { packModel } from '../models.js';
import { armUnit } from './arm.js';

beforeAll(async () => {
  await initEngine();
});

const recipe = {
  batch: 8,
  lr: 0.01,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 5e-4,
  decayOn: 'all' as const,
  schedule: 'cosine' as const,
  gamma: 0.1,
  warmupEpochs: 0,
  labelSmoothing: 0,
  augment: true,
  workers: 0,
  seed: 1,
  epochs: 0,
  bnImages: 8,
};

it('runs arm units on blobs; a bad option and a NaN baseline fail alone, with their error', async () => {
  const data = await readCifar10(findBundledSubset());
  const pick = (set: typeof data.train) =>
    selectImages(
      set,
      Uint32Array.from({ length: 16 }, (_, i) => i),
    );
  const model = createCifarResNet({ arch: 'resnet20', seed: 3 });
  const executor = await localExecutor({ threads: 0 });
  try {
    const baseline = await executor.blobs.put(await packModel(model));
    const nan = model.getWeights().map((w) => tf.fill(w.shape, Number.NaN));
    model.setWeights(nan);
    tf.dispose(nan);
    const nanBaseline = await executor.blobs.put(await packModel(model));
    const images = {
      train: await executor.blobs.put(packImageSet(pick(data.train))),
      test: await executor.blobs.put(packImageSet(pick(data.test))),
    };
    const arm = (blob: string, ratio: number) =>
      armUnit.unit({
        baseline: blob,
        strategy: 'svd',
        options: { ratio },
        layers: 'stage3.block3.conv1',
        seed: 0,
        recipe,
        data: images,
        measure: null,
      });
    const outcomes = await executor.run([arm(baseline, 0.5), arm(baseline, 7), arm(nanBaseline, 0.5)]);
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, false]);
    const [good] = outcomes;
    if (!good?.ok) throw new Error('the good arm failed');
    expect(good.result.rewritten.map((r) => r.layer)).toEqual(['stage3.block3.conv1']);
    expect(good.result.batchNorm?.images).toBe(8);
    expect(await executor.blobs.has(good.result.model)).toBe(true);
    for (const outcome of outcomes.slice(1)) {
      if (outcome.ok) throw new Error('expected a failure');
      expect(outcome.error.message.length).toBeGreaterThan(0);
    }
  } finally {
    model.dispose();
    await executor.close();
  }
});
