import { findBundledSubset, readCifar10, selectImages } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { type Executor, localExecutor } from '@decompose/jobs';
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

/** The first 16 training and test images of the bundled subset, as blobs of `executor`. */
async function putImages(executor: Executor) {
  const data = await readCifar10(findBundledSubset());
  const pick = (set: typeof data.train) =>
    selectImages(
      set,
      Uint32Array.from({ length: 16 }, (_, i) => i),
    );
  return {
    train: await executor.blobs.put(packImageSet(pick(data.train))),
    test: await executor.blobs.put(packImageSet(pick(data.test))),
  };
}

it('runs arm units on blobs; a bad option and a NaN baseline fail alone, with their error', async () => {
  const model = createCifarResNet({ arch: 'resnet20', seed: 3 });
  const executor = await localExecutor({ threads: 0 });
  try {
    const baseline = await executor.blobs.put(await packModel(model));
    const nan = model.getWeights().map((w) => tf.fill(w.shape, Number.NaN));
    model.setWeights(nan);
    tf.dispose(nan);
    const nanBaseline = await executor.blobs.put(await packModel(model));
    const images = await putImages(executor);
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

it('resumes an interrupted fine-tune from its unit checkpoint, with the same model and step losses', async () => {
  const model = createCifarResNet({ arch: 'resnet20', seed: 3 });
  const executor = await localExecutor({ threads: 0 });
  try {
    const unit = armUnit.unit({
      baseline: await executor.blobs.put(await packModel(model)),
      strategy: 'svd',
      options: { ratio: 0.5 },
      layers: 'stage3.block3.conv1',
      seed: 0,
      recipe: { ...recipe, epochs: 3 },
      data: await putImages(executor),
      measure: null,
    });
    const [expected] = await executor.run([unit]);
    if (!expected?.ok) throw new Error('the uninterrupted arm failed');

    // Stopped once its first fine-tune epoch is done: the executor keeps the unit's checkpoint.
    const stop = new AbortController();
    await expect(
      executor.run([unit], {
        signal: stop.signal,
        onProgress: (_index, p) => {
          if (typeof p !== 'number' && p.phase === 'epoch') stop.abort(new Error('stopped'));
        },
      }),
    ).rejects.toThrow('stopped');

    const phases: [unknown, number][] = [];
    const [resumed] = await executor.run([unit], {
      onProgress: (_index, p) => {
        if (typeof p !== 'number' && (p.phase === 'resumed' || p.phase === 'epoch'))
          phases.push([p.phase, p.done]);
      },
    });
    expect(phases).toEqual([
      ['resumed', 1],
      ['epoch', 2],
      ['epoch', 3],
    ]);
    if (!resumed?.ok) throw new Error('the resumed arm failed');
    expect(resumed.result.model).toBe(expected.result.model);
    expect(resumed.result.fineTune?.steps).toEqual(expected.result.fineTune?.steps);
    expect(resumed.result.fineTune?.steps).toHaveLength(6);
    const losses = (r: typeof expected.result) => r.fineTune?.epochs.map((e) => [e.train.loss, e.eval?.loss]);
    expect(losses(resumed.result)).toEqual(losses(expected.result));
    expect(resumed.result.fineTuned).toEqual(expected.result.fineTuned);
  } finally {
    model.dispose();
    await executor.close();
  }
});
