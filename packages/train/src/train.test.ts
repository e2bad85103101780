import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from './checkpoint.js';
import {
  CheckpointExistsError,
  CheckpointMismatchError,
  InvalidTrainingOptionError,
  TrainingDivergedError,
  TrainingInterruptedError,
} from './errors.js';
import { syntheticImages, temporaryDir, tinyModel } from './test-fixtures.js';
import { type EpochMetrics, METRICS_FILE, type TrainOptions, train } from './train.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function checkpointDir(): Promise<string> {
  const { dir, remove } = await temporaryDir();
  cleanups.push(remove);
  return dir;
}

const trainData = syntheticImages(40);
const evalData = syntheticImages(20, 11);

/** 40 images in batches of 16: 3 steps per epoch, the last one of 8 images. */
function options(model: tfl.LayersModel, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    model,
    trainData,
    evalData,
    epochs: 2,
    batchSize: 16,
    seed: 5,
    schedule: { type: 'cosine', lr: 0.05, warmupEpochs: 0.5 },
    optimizer: { momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    labelSmoothing: 0.1,
    ...overrides,
  };
}

class Interrupted extends Error {}

function weightValues(model: tfl.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

describe('train', () => {
  it('resumed after epoch 1, ends with the same weights as an uninterrupted run', async () => {
    const straight = tinyModel();
    const steps: number[] = [];
    const result = await train(options(straight, { onStep: (p) => steps.push(p.globalStep) }));
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(result.history.map((m) => m.epoch)).toEqual([1, 2]);

    const dir = await checkpointDir();
    const interrupted = tinyModel();
    const stopAfterFirstEpoch = (): void => {
      throw new Interrupted();
    };
    await expect(
      train(options(interrupted, { checkpointDir: dir, onEpoch: stopAfterFirstEpoch })),
    ).rejects.toThrow(Interrupted);
    expect((await readCheckpoint(dir))?.epoch).toBe(1);

    const resumed = tinyModel(4, 42); // different initial weights: all must come from the checkpoint
    const continued = await train(options(resumed, { checkpointDir: dir, resume: true }));
    expect(continued.startEpoch).toBe(1);
    expect(continued.globalStep).toBe(6);
    expect(continued.history.map((m) => m.epoch)).toEqual([2]);
    const expected = weightValues(straight);
    for (const [i, values] of weightValues(resumed).entries()) expect(values).toEqual(expected[i]);

    const lines = (await readFile(path.join(dir, METRICS_FILE), 'utf8')).trim().split('\n');
    const metrics = lines.map((line) => JSON.parse(line) as EpochMetrics);
    expect(metrics.map((m) => m.epoch)).toEqual([1, 2]);
    expect(metrics[1]?.train.loss).toBeCloseTo(result.history[1]!.train.loss, 6);
    expect(metrics[1]?.eval?.count).toBe(20);
  });

  it('stops before the next step when its signal is aborted, and resumes to the uninterrupted weights', async () => {
    const straight = tinyModel();
    await train(options(straight));
    const dir = await checkpointDir();
    const interrupted = tinyModel();
    const controller = new AbortController();
    const steps: number[] = [];
    const abortMidEpoch2 = (p: { globalStep: number }) => {
      steps.push(p.globalStep);
      if (p.globalStep === 4) controller.abort();
    };
    const tensors = tf.memory().numTensors;
    const error = await train(
      options(interrupted, { checkpointDir: dir, signal: controller.signal, onStep: abortMidEpoch2 }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingInterruptedError);
    expect(error).toMatchObject({ epoch: 2, completedEpochs: 1 });
    expect((error as Error).message).toMatch(/epoch 2.*checkpoint of epoch 1 is kept at .*Resume from it/);
    expect(steps).toEqual([1, 2, 3, 4]);
    expect(tf.memory().numTensors).toBe(tensors);
    expect((await readCheckpoint(dir))?.epoch).toBe(1);

    const resumed = tinyModel(4, 42);
    await train(options(resumed, { checkpointDir: dir, resume: true }));
    const expected = weightValues(straight);
    for (const [i, values] of weightValues(resumed).entries()) expect(values).toEqual(expected[i]);
  });

  it('stops on a NaN loss with a typed error and keeps the last good checkpoint', async () => {
    const dir = await checkpointDir();
    const model = tinyModel();
    const poison = (): void => {
      const fc = model.getLayer('fc');
      fc.setWeights(fc.getWeights().map((w) => tf.fill(w.shape, Number.NaN)));
    };
    const error = await train(options(model, { checkpointDir: dir, onEpoch: poison })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TrainingDivergedError);
    expect(error).toMatchObject({ epoch: 2, step: 3 });
    const checkpoint = await readCheckpoint(dir);
    expect(checkpoint?.epoch).toBe(1);
  });

  it('refuses a checkpoint from another model or config, naming the difference', async () => {
    const dir = await checkpointDir();
    await train(options(tinyModel(), { epochs: 1, checkpointDir: dir }));

    await expect(train(options(tinyModel(), { epochs: 1, checkpointDir: dir }))).rejects.toThrow(
      CheckpointExistsError,
    );
    const wider = await train(options(tinyModel(8), { epochs: 1, checkpointDir: dir, resume: true })).catch(
      (e: unknown) => e,
    );
    expect(wider).toBeInstanceOf(CheckpointMismatchError);
    expect((wider as CheckpointMismatchError).message).toMatch(
      /weight conv\/kernel: checkpoint shape \[3, 3, 3, 4\]/,
    );
    const otherLr = train(
      options(tinyModel(), {
        epochs: 1,
        checkpointDir: dir,
        resume: true,
        schedule: { type: 'cosine', lr: 0.1 },
      }),
    );
    await expect(otherLr).rejects.toThrow(/config\.schedule\.lr: checkpoint 0\.05, this run 0\.1/);
  });

  it('leaks no tensors across steps', async () => {
    const counts: number[] = [];
    await train(options(tinyModel(), { epochs: 3, onStep: () => counts.push(tf.memory().numTensors) }));
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(counts[1]).toBe(counts[0]);
  });

  it('rejects bad options before training', async () => {
    await expect(train(options(tinyModel(), { epochs: 0 }))).rejects.toThrow(InvalidTrainingOptionError);
    await expect(train(options(tinyModel(), { resume: true }))).rejects.toThrow(/checkpointDir/);
  });
});
