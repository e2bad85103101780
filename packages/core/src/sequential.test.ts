// Every entry point of core takes a `tf.sequential` model as it takes a functional one.
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, expect, it } from 'vitest';
import { costTable } from './cost-table.js';
import { cutModel, downstreamFrontier } from './cut.js';
import { inferenceModel } from './inference.js';
import { applyStrategy } from './surgery.js';
import { describeLayer, listTargets } from './target.js';
import { identityStrategy } from './test/identity-strategy.js';
import { smallSequentialModel } from './test/models.js';
import { relativeDifference } from './testing.js';
import { measureLayerTimes } from './timing.js';

let model: LayersModel;
let x: tf.Tensor;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  model = smallSequentialModel();
  x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 5);
});

const predict = (m: LayersModel, input: tf.Tensor | tf.Tensor[]) => m.predict(input) as tf.Tensor;

/** Runs `once` three times after a warm-up and checks that no tensor is left behind. */
async function leaksNothing(once: () => unknown): Promise<void> {
  await once();
  const tensors = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) await once();
  expect(tf.memory().numTensors).toBe(tensors);
}

it('describes and lists the layers of a sequential model', () => {
  expect(listTargets(model).map((t) => t.name)).toEqual(['conv1', 'bn1', 'relu1', 'conv2', 'pool', 'head']);
  expect(describeLayer(model, 'conv2').conv?.inputSize).toEqual([8, 8]);
});

it('applyStrategy rewrites a sequential model', async () => {
  await leaksNothing(() => {
    const { model: rewritten, report } = applyStrategy(model, identityStrategy);
    expect(report.map((r) => r.layer)).toEqual(['conv1', 'conv2']);
    expect(tf.tidy(() => relativeDifference(predict(rewritten, x), predict(model, x)))).toBeLessThan(1e-5);
    rewritten.dispose();
  });
});

it('costTable costs a sequential model', () => {
  const table = costTable(model);
  expect(table.rows.map((r) => r.name)).toEqual(['conv1', 'bn1', 'conv2', 'head']);
  expect(table.uncosted).toEqual([]);
  expect(table.rows[0]!.forwardMacs).toBe(9 * 3 * 8 * 64);
});

it('inferenceModel folds a sequential model', async () => {
  await leaksNothing(() => {
    const folded = inferenceModel(model).model;
    expect(folded.layers.map((l) => l.name)).toEqual(['conv1_input', 'conv1', 'conv2', 'pool', 'head']);
    expect(tf.tidy(() => relativeDifference(predict(folded, x), predict(model, x)))).toBeLessThan(1e-5);
    folded.dispose();
  });
});

it('downstreamFrontier and cutModel cut a sequential model', async () => {
  await leaksNothing(() => {
    const frontier = downstreamFrontier(model, ['conv2']);
    expect(frontier).toEqual([{ layer: 'relu1', output: 0 }]);
    const input = { layer: model.inputLayers[0]?.name ?? 'conv1_input', output: 0 };
    const prefix = cutModel(model, { inputs: [input], outputs: frontier });
    const suffix = cutModel(model, { inputs: frontier });
    const difference = tf.tidy(() =>
      relativeDifference(predict(suffix.model, predict(prefix.model, x)), predict(model, x)),
    );
    expect(difference).toBeLessThan(1e-6);
    prefix.model.dispose();
    suffix.model.dispose();
  });
});

it('measureLayerTimes times a sequential model', async () => {
  const timings = await measureLayerTimes(model, { batch: 2, repeats: 1, warmup: 0 });
  expect(timings.map((t) => t.name)).toEqual(['conv1', 'bn1', 'relu1', 'conv2', 'pool', 'head']);
  expect(timings[0]!.inputShapes).toEqual([[2, 8, 8, 3]]);
});
