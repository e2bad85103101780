import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import type { TrainingBatch } from './batch.js';
import { createGradientComputer, type GradientComputer } from './computer.js';
import { GradientWorkerError } from './errors.js';
import { maxDifference } from './fixtures/compare.js';
import { CrashInWorker } from './fixtures/crash-in-worker.mjs';
import { copyModel, randomBatch, smallConvNet } from './fixtures/models.js';
import type { GradientResult } from './step.js';

const exampleShape = [6, 6, 3];
const numClasses = 4;
// wasm, the default backend, with the engine's training kernels (conv gradients); the in-thread tests use cpu.
const backend = 'wasm';

beforeAll(async () => {
  await initEngine({ backend });
});

function expectClose(actual: GradientResult, expected: GradientResult): void {
  expect(actual.loss).toBeCloseTo(expected.loss, 5);
  expect(actual.correct).toBe(expected.correct);
  expect(actual.gradients).toHaveLength(expected.gradients.length);
  for (const [i, gradient] of actual.gradients.entries()) {
    expect(maxDifference(gradient, expected.gradients[i] ?? [])).toBeLessThan(1e-5);
  }
}

function slice(batch: TrainingBatch, start: number, count: number): TrainingBatch {
  const size = batch.images.length / batch.count;
  return {
    images: batch.images.slice(start * size, (start + count) * size),
    labels: batch.labels.slice(start, start + count),
    count,
  };
}

describe('createGradientComputer with worker threads', () => {
  let model: tfl.LayersModel;
  let computer: GradientComputer;

  beforeAll(async () => {
    model = smallConvNet(exampleShape, numClasses, { batchNorm: false });
    computer = await createGradientComputer({ model, workers: 2, numClasses, labelSmoothing: 0.1, backend });
  });
  afterAll(() => computer.close());

  it('splits the batch over two workers and matches the in-thread loss and gradients', async () => {
    const inThread = await createGradientComputer({ model, workers: 0, numClasses, labelSmoothing: 0.1 });
    // 7 examples: slices of 4 and 3, so the slice-size weighting matters.
    const batch = randomBatch(7, exampleShape, numClasses, 3);
    expect(computer.workers).toBe(2);
    expectClose(await computer.compute(batch), await inThread.compute(batch));
    // A single example: the second worker sits the step out.
    const single = randomBatch(1, exampleShape, numClasses, 10);
    expectClose(await computer.compute(single), await inThread.compute(single));
  });

  it('follows the main model: new weights there give the new gradients', async () => {
    const batch = randomBatch(5, exampleShape, numClasses, 4);
    const before = await computer.compute(batch);
    const halved = model.getWeights().map((weight) => tf.mul(weight, 0.5));
    model.setWeights(halved);
    tf.dispose(halved);
    const inThread = await createGradientComputer({ model, workers: 0, numClasses, labelSmoothing: 0.1 });
    const after = await computer.compute(batch);
    expect(after.loss).not.toBeCloseTo(before.loss, 5);
    expectClose(after, await inThread.compute(batch));
  });

  it('runs concurrent compute calls one after another', async () => {
    const batches = [
      randomBatch(3, exampleShape, numClasses, 8),
      randomBatch(4, exampleShape, numClasses, 9),
    ];
    const together = await Promise.all(batches.map((batch) => computer.compute(batch)));
    for (const [i, batch] of batches.entries())
      expectClose(await computer.compute(batch), together[i] as GradientResult);
  });

  it('leaks no tensors over 50 steps, in this thread or in the workers', async () => {
    const batch = randomBatch(6, exampleShape, numClasses, 5);
    await computer.compute(batch);
    const mainTensors = tf.memory().numTensors;
    const workerTensors = await computer.workerTensorCounts();
    expect(workerTensors).toHaveLength(2);
    for (let step = 1; step < 50; step++) await computer.compute(batch);
    expect(tf.memory().numTensors).toBe(mainTensors);
    expect(await computer.workerTensorCounts()).toEqual(workerTensors);
  });
});

describe('BatchNorm over worker threads', () => {
  it('uses per-worker batch statistics and averages the workers’ moving statistics', async () => {
    const model = smallConvNet(exampleShape, numClasses, { batchNorm: true });
    const batch = randomBatch(8, exampleShape, numClasses, 6);
    // What each worker computes: an in-thread step on its slice, from the same starting weights.
    const halves = [];
    for (const start of [0, 4]) {
      const copy = await copyModel(model);
      const result = await (await createGradientComputer({ model: copy, workers: 0, numClasses })).compute(
        slice(batch, start, 4),
      );
      halves.push({ result, statistics: copy.nonTrainableWeights.map((w) => w.read().dataSync()) });
    }
    const [first, second] = halves;
    if (!first || !second) throw new Error('unreachable');

    const computer = await createGradientComputer({ model, workers: 2, numClasses, backend });
    try {
      const result = await computer.compute(batch);
      expectClose(result, {
        loss: (first.result.loss + second.result.loss) / 2,
        correct: first.result.correct + second.result.correct,
        gradients: first.result.gradients.map((g, i) =>
          g.map((v, k) => (v + (second.result.gradients[i]?.[k] ?? 0)) / 2),
        ),
      });
      for (const [i, weight] of model.nonTrainableWeights.entries()) {
        const expected = (first.statistics[i] ?? []).map(
          (v, k) => (v + (second.statistics[i]?.[k] ?? 0)) / 2,
        );
        expect(maxDifference(weight.read().dataSync(), expected)).toBeLessThan(1e-6);
      }
    } finally {
      await computer.close();
    }
  });
});

describe('predictions over worker threads', () => {
  let model: tfl.LayersModel;
  let computer: GradientComputer;
  const predictHere = (batch: TrainingBatch) =>
    tf.tidy(() =>
      (model.predict(tf.tensor(batch.images, [batch.count, ...exampleShape])) as tf.Tensor).dataSync(),
    );
  const statistics = () => model.nonTrainableWeights.map((weight) => weight.read().dataSync());

  beforeAll(async () => {
    model = smallConvNet(exampleShape, numClasses, { batchNorm: true });
    computer = await createGradientComputer({ model, workers: 2, numClasses, backend });
  });
  afterAll(() => computer.close());

  it('predict with the main model’s current weights and moving statistics, leaving them alone', async () => {
    const changeWeights = (shift: number) => {
      const changed = model.getWeights().map((weight, i) => tf.add(tf.mul(weight, 0.9), shift * (i + 1)));
      model.setWeights(changed);
      tf.dispose(changed);
    };
    const expectSamePredictions = async (counts: number[]) => {
      for (const count of counts) {
        const batch = randomBatch(count, exampleShape, numClasses, 12);
        const outputs = await computer.predict(batch);
        expect(outputs).toHaveLength(count * numClasses);
        expect(maxDifference(outputs, predictHere(batch))).toBeLessThan(1e-5);
      }
    };
    // A step moves the statistics (the workers' average), then the main thread changes every weight on
    // its own (as an optimizer and a checkpoint restore would): the workers must predict with these.
    await computer.compute(randomBatch(8, exampleShape, numClasses, 11));
    changeWeights(0.01);
    const before = statistics();
    // 7 examples: slices of 4 and 3, put back in order; 1 example: the second worker sits it out.
    await expectSamePredictions([7, 1]);
    expect(statistics()).toEqual(before);
    // Weights changed between two predictions, with no step in between, reach the workers too.
    changeWeights(-0.02);
    await expectSamePredictions([7]);
  });

  it('leaks no tensors over 20 predictions, in this thread or in the workers', async () => {
    const batch = randomBatch(6, exampleShape, numClasses, 13);
    await computer.predict(batch);
    const mainTensors = tf.memory().numTensors;
    const workerTensors = await computer.workerTensorCounts();
    for (let i = 1; i < 20; i++) await computer.predict(batch);
    expect(tf.memory().numTensors).toBe(mainTensors);
    expect(await computer.workerTensorCounts()).toEqual(workerTensors);
  });
});

describe('worker failures', () => {
  const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).href;

  it('rejects creation with a setup-phase GradientWorkerError when a setup module throws', async () => {
    const model = smallConvNet(exampleShape, numClasses, { batchNorm: false });
    const creation = createGradientComputer({
      model,
      workers: 1,
      numClasses,
      backend,
      setupModules: [fixture('throwing-setup.mjs')],
    });
    await expect(creation).rejects.toThrow(GradientWorkerError);
    await expect(creation).rejects.toMatchObject({
      phase: 'setup',
      reason: expect.stringMatching(/failed on purpose/),
    });
  });

  function crashingModel(mode: 'throw' | 'exit'): tfl.LayersModel {
    const model = tfl.sequential();
    model.add(new CrashInWorker({ mode, inputShape: exampleShape }));
    model.add(tfl.layers.flatten());
    model.add(tfl.layers.dense({ units: numClasses }));
    return model;
  }

  it.each([
    ['throws', 'throw', /CrashInWorker failed on purpose/],
    ['exits', 'exit', /exited with code 3/],
  ] as const)(
    'rejects compute with a step-phase GradientWorkerError when a worker %s',
    async (_, mode, reason) => {
      const computer = await createGradientComputer({
        model: crashingModel(mode),
        workers: 1,
        numClasses,
        backend,
        // A relative name, resolved from this file: the custom layer class must be registered in the worker.
        setupModules: ['./fixtures/crash-in-worker.mjs'],
        resolveFrom: import.meta.url,
      });
      const batch = randomBatch(2, exampleShape, numClasses);
      await expect(computer.compute(batch)).rejects.toMatchObject({
        name: 'GradientWorkerError',
        phase: 'step',
        reason: expect.stringMatching(reason),
      });
      // The computer is closed from then on, and says why.
      await expect(computer.compute(batch)).rejects.toThrow(GradientWorkerError);
      await expect(computer.predict(batch)).rejects.toThrow(GradientWorkerError);
      await computer.close();
    },
  );

  it('rejects predict, rather than hanging, when a worker exits during a prediction', async () => {
    const computer = await createGradientComputer({
      model: crashingModel('exit'),
      workers: 2,
      numClasses,
      backend,
      setupModules: ['./fixtures/crash-in-worker.mjs'],
      resolveFrom: import.meta.url,
    });
    const batch = randomBatch(4, exampleShape, numClasses);
    await expect(computer.predict(batch)).rejects.toMatchObject({
      name: 'GradientWorkerError',
      phase: 'step',
      reason: expect.stringMatching(/exited with code 3/),
    });
    await expect(computer.predict(batch)).rejects.toThrow(GradientWorkerError);
    await computer.close();
  });
});
