import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { UnknownLayerError } from './errors.js';
import { smallResidualModel } from './test/models.js';
import { measureLayerTimes } from './timing.js';

beforeAll(async () => {
  await initEngine();
});

it('times every layer of any class forward and forward+backward, leaving the model and memory as they were', async () => {
  const model = smallResidualModel();
  const weights = model.getWeights().map((w) => w.dataSync().slice());
  const tensors = tf.memory().numTensors;
  const progress: number[] = [];

  const timings = await measureLayerTimes(model, {
    batch: 2,
    repeats: 3,
    warmup: 1,
    onLayer: (_, done) => progress.push(done),
  });

  expect(timings.map((t) => t.name)).toEqual(model.layers.slice(1).map((l) => l.name));
  expect(progress).toEqual(timings.map((_, i) => i + 1));
  const add = timings.find((t) => t.name === 'block.add')!;
  expect(add.inputShapes).toEqual([
    [2, 8, 8, 8],
    [2, 8, 8, 8],
  ]);
  for (const t of timings) {
    expect(t.forwardMs).toBeGreaterThanOrEqual(0);
    expect(t.forwardBackwardMs).toBeGreaterThanOrEqual(0);
  }
  // Batch norm runs in training mode for the backward pass, which updates moving statistics: of a copy only.
  expect(model.getWeights().map((w) => w.dataSync())).toEqual(weights);
  expect(tf.memory().numTensors).toBe(tensors);
  model.dispose();
});

it('times only the named layers, and rejects unknown names', async () => {
  const model = smallResidualModel();
  const timings = await measureLayerTimes(model, {
    batch: 1,
    repeats: 1,
    warmup: 0,
    layers: ['head', 'stem.conv'],
  });
  expect(timings.map((t) => [t.name, t.className, t.inputShapes])).toEqual([
    ['head', 'Dense', [[1, 16]]],
    ['stem.conv', 'Conv2D', [[1, 8, 8, 3]]],
  ]);
  await expect(measureLayerTimes(model, { layers: ['stem.conv2'] })).rejects.toThrow(UnknownLayerError);
  model.dispose();
});
