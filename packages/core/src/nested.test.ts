// Layers of a sub-model used as a layer (backbone + head) are addressable as `<sub-model>/<layer>`, rewritten,
// costed, cut and timed; nothing is skipped silently.
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import {
  model as functionalModel,
  initializers,
  input,
  type LayersModel,
  layers,
  type SymbolicTensor,
  sequential,
} from '@tensorflow/tfjs-layers';
import { beforeAll, expect, it } from 'vitest';
import { costTable } from './cost-table.js';
import { cutModel, downstreamFrontier } from './cut.js';
import { UnknownLayerError } from './errors.js';
import { applyStrategy } from './surgery.js';
import { describeLayer, listTargets } from './target.js';
import { identityStrategy } from './test/identity-strategy.js';
import { relativeDifference } from './testing.js';
import { measureLayerTimes } from './timing.js';

const seeded = (seed: number) => initializers.glorotUniform({ seed });

/** image → backbone (a tf.sequential) → neck (a functional model) → pooling → head. */
function backboneAndHead(): LayersModel {
  const backbone = sequential({
    name: 'backbone',
    layers: [
      layers.conv2d({
        name: 'conv1',
        inputShape: [8, 8, 3],
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        kernelInitializer: seeded(1),
      }),
      layers.reLU({ name: 'relu1' }),
      layers.conv2d({ name: 'block_1_project', filters: 8, kernelSize: 1, kernelInitializer: seeded(2) }),
    ],
  });
  const neckInput = input({ shape: [8, 8, 8], name: 'neck_input' });
  const neckConv = layers.conv2d({ name: 'conv', filters: 6, kernelSize: 3, kernelInitializer: seeded(3) });
  const neck = functionalModel({
    inputs: neckInput,
    outputs: neckConv.apply(neckInput) as SymbolicTensor,
    name: 'neck',
  });
  const image = input({ shape: [8, 8, 3], name: 'image' });
  let h = backbone.apply(image) as SymbolicTensor;
  h = neck.apply(h) as SymbolicTensor;
  h = layers.globalAveragePooling2d({ name: 'pool' }).apply(h) as SymbolicTensor;
  const logits = layers
    .dense({ name: 'head', units: 4, kernelInitializer: seeded(4) })
    .apply(h) as SymbolicTensor;
  return functionalModel({ inputs: image, outputs: logits, name: 'backbone-and-head' });
}

let model: LayersModel;
let x: tf.Tensor;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  model = backboneAndHead();
  x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 7);
});

const predict = (m: LayersModel, input: tf.Tensor) => m.predict(input) as tf.Tensor;

it('lists and describes the layers of nested sub-models by path', () => {
  expect(listTargets(model).map((t) => t.name)).toEqual([
    'backbone/conv1',
    'backbone/relu1',
    'backbone/block_1_project',
    'neck/conv',
    'pool',
    'head',
  ]);
  expect(describeLayer(model, 'neck/conv').conv).toMatchObject({
    inChannels: 8,
    inputSize: [8, 8],
    outputSize: [6, 6],
  });
  expect(() => describeLayer(model, 'backbone/conv2')).toThrow(UnknownLayerError);
  expect(() => describeLayer(model, 'backbone/conv2')).toThrow(/backbone\/conv1/);
});

it('rewrites layers inside nested sub-models, and lists those it skips with the reason', () => {
  const once = () => {
    const { model: rewritten, report, skipped } = applyStrategy(model, identityStrategy);
    expect(report.map((r) => [r.layer, r.replacements])).toEqual([
      ['backbone/conv1', ['backbone/conv1.copy']],
      ['neck/conv', ['neck/conv.copy']],
    ]);
    expect(skipped).toEqual([
      { layer: 'backbone/block_1_project', reason: '1×1 convolutions are already minimal' },
      { layer: 'head', reason: 'it is a Dense, not a convolution' },
    ]);
    const backbone = rewritten.getLayer('backbone') as LayersModel;
    expect(backbone.layers.map((l) => l.name)).toContain('conv1.copy');
    expect(tf.tidy(() => relativeDifference(predict(rewritten, x), predict(model, x)))).toBeLessThan(1e-6);
    rewritten.dispose();
  };
  once();
  const tensors = tf.memory().numTensors;
  once();
  expect(tf.memory().numTensors).toBe(tensors);
});

it('selects nested layers by path and glob, and per-layer options by path', () => {
  const byGlob = applyStrategy(model, identityStrategy, { layers: 'backbone/**' });
  expect(byGlob.report.map((r) => r.layer)).toEqual(['backbone/conv1']);
  expect(byGlob.skipped.map((s) => s.layer)).toEqual(['backbone/relu1', 'backbone/block_1_project']);
  byGlob.model.dispose();
  const byName = applyStrategy(model, identityStrategy, { perLayerOptions: { 'neck/conv': { ratio: 0.5 } } });
  expect(byName.report.map((r) => [r.layer, r.options.ratio])).toEqual([['neck/conv', 0.5]]);
  byName.model.dispose();
});

it('costs the layers of nested sub-models, not the sub-models as unknown layers', () => {
  const table = costTable(model);
  expect(table.rows.map((r) => r.name)).toEqual([
    'backbone/conv1',
    'backbone/block_1_project',
    'neck/conv',
    'head',
  ]);
  expect(table.uncosted).toEqual([]);
  expect(table.rows[2]!.forwardMacs).toBe(9 * 8 * 6 * 36);
});

it('cuts at the frontier of a nested layer (its whole sub-model) and runs the rewritten copy from there', () => {
  const frontier = downstreamFrontier(model, ['neck/conv']);
  expect(frontier).toEqual([{ layer: 'backbone', output: 0 }]);
  const { model: rewritten } = applyStrategy(model, identityStrategy, { layers: 'neck/conv' });
  const prefix = cutModel(model, { inputs: [{ layer: 'image', output: 0 }], outputs: frontier });
  const suffix = cutModel(rewritten, { inputs: frontier });
  const difference = tf.tidy(() =>
    relativeDifference(predict(suffix.model, predict(prefix.model, x)), predict(model, x)),
  );
  expect(difference).toBeLessThan(1e-6);
  for (const m of [rewritten, prefix.model, suffix.model]) m.dispose();
});

it('times the layers of nested sub-models by path', async () => {
  const timings = await measureLayerTimes(model, {
    batch: 2,
    repeats: 1,
    warmup: 0,
    layers: ['neck/conv', 'head'],
  });
  expect(timings.map((t) => [t.name, t.inputShapes])).toEqual([
    ['neck/conv', [[2, 8, 8, 8]]],
    ['head', [[2, 6]]],
  ]);
});

it('folds the BatchNorms inside a nested sub-model', async () => {
  const { inferenceModel } = await import('./inference.js');
  const backbone = sequential({
    name: 'backbone',
    layers: [
      layers.conv2d({
        name: 'conv',
        inputShape: [8, 8, 3],
        filters: 4,
        kernelSize: 3,
        kernelInitializer: seeded(1),
      }),
      layers.batchNormalization({
        name: 'bn',
        movingMeanInitializer: initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 2 }),
        movingVarianceInitializer: initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 3 }),
      }),
      layers.reLU({ name: 'relu' }),
    ],
  });
  const image = input({ shape: [8, 8, 3], name: 'image' });
  const pooled = layers
    .globalAveragePooling2d({ name: 'pool' })
    .apply(backbone.apply(image)) as SymbolicTensor;
  const net = functionalModel({ inputs: image, outputs: pooled });
  const once = () => {
    const folded = inferenceModel(net).model;
    const inner = folded.getLayer('backbone') as LayersModel;
    expect(inner.layers.map((l) => l.name)).toEqual(['conv_input', 'conv']);
    expect(tf.tidy(() => relativeDifference(predict(folded, x), predict(net, x)))).toBeLessThan(1e-5);
    folded.dispose();
  };
  once();
  const tensors = tf.memory().numTensors;
  once();
  expect(tf.memory().numTensors).toBe(tensors);
  net.dispose();
});
