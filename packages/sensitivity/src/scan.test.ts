import { convCost, type DecompositionStrategy } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type ScanCache, scanEntryKey, scanSensitivity } from './scan.js';
import type { Metric, ScanEntry, SensitivityTable } from './table.js';

/** Keeps the first round(ratio·C_out) filters of a conv and zeroes the rest: a lossy rewrite whose damage grows. */
const keepFilters: DecompositionStrategy<{ ratio: number }> = {
  name: 'keep-filters',
  version: '1.0.0',
  description: 'test strategy',
  optionsSchema: z.object({ ratio: z.number().gt(0).lte(1) }),
  supports: () => ({ ok: true }),
  decompose(target, { ratio }) {
    const conv = target.conv!;
    const layer = tfl.layers.conv2d({
      filters: conv.outChannels,
      kernelSize: [...conv.kernelSize],
      strides: [...conv.strides],
      padding: conv.padding,
      useBias: conv.useBias,
      name: target.name,
    });
    const kernel = target.kernel!;
    const out = kernel.shape[3];
    const keep = Math.round(ratio * out);
    const weights = [tf.tidy(() => tf.mul(kernel, tf.concat([tf.ones([keep]), tf.zeros([out - keep])])))];
    if (target.bias) weights.push(target.bias.clone());
    return { layers: [layer], weights: [weights] };
  },
  cost: (shape, { ratio }) => convCost({ ...shape, outChannels: Math.round(ratio * shape.outChannels) }),
};

/**
 * conv1 → (conv2, with `batchNorm` followed by a BatchNorm and a relu, which the calibration path folds into
 * it) + skip → pooling → fc.
 */
function smallModel(batchNorm = false): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  const c1 = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'conv1' });
  const c2 = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'conv2' });
  const x = c1.apply(input) as tfl.SymbolicTensor;
  let branch = c2.apply(x) as tfl.SymbolicTensor;
  if (batchNorm) {
    const random = (minval: number, seed: number) =>
      tfl.initializers.randomUniform({ minval, maxval: minval + 1, seed });
    const bn = tfl.layers.batchNormalization({
      name: 'bn2',
      gammaInitializer: random(0.5, 1),
      betaInitializer: random(-0.5, 2),
      movingMeanInitializer: random(-0.5, 3),
      movingVarianceInitializer: random(0.5, 4),
    });
    const relu = tfl.layers.activation({ activation: 'relu', name: 'relu2' });
    branch = relu.apply(bn.apply(branch)) as tfl.SymbolicTensor;
  }
  const y = tfl.layers.add().apply([x, branch]) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(y) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ units: 4, name: 'fc' }).apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits });
}

let model: tfl.LayersModel;
let images: tf.Tensor4D;
let labels: Int32Array;

/** Accuracy against the original model's own predictions (so the baseline is exactly 1). */
async function evaluate(m: tfl.LayersModel): Promise<Metric> {
  const predicted = tf.tidy(() => tf.argMax(m.predict(images) as tf.Tensor2D, 1));
  const p = Array.from(await predicted.data());
  predicted.dispose();
  const correct = p.filter((v, i) => v === labels[i]).length;
  return { accuracy: correct / labels.length, loss: 0 };
}

beforeAll(async () => {
  await initEngine({ backend: 'wasm' });
  model = smallModel();
  images = tf.randomNormal([64, 8, 8, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  const predicted = tf.tidy(() => tf.argMax(model.predict(images) as tf.Tensor2D, 1));
  labels = Int32Array.from(await predicted.data());
  predicted.dispose();
});

it('scans every layer × ratio through the strategy and leaves the model untouched', async () => {
  const before = model.getWeights().map((w) => w.dataSync().slice());
  const scan = () =>
    scanSensitivity({
      model,
      strategy: keepFilters,
      layers: ['conv1', 'conv2'],
      ratios: [0.25, 1],
      evaluate,
      calibrationSize: 64,
    });
  await scan();
  const tensors = tf.memory().numTensors;
  const table = await scan();
  expect(tf.memory().numTensors).toBe(tensors);
  expect(table.baseline.accuracy).toBe(1);
  expect(table.entries.map((e) => [e.layer, e.ratio])).toEqual([
    ['conv1', 0.25],
    ['conv1', 1],
    ['conv2', 0.25],
    ['conv2', 1],
  ]);
  const full = table.entries.filter((e) => e.ratio === 1);
  expect(full.every((e) => e.metric.accuracy === 1)).toBe(true);
  expect(table.entries.find((e) => e.layer === 'conv1' && e.ratio === 0.25)?.metric.accuracy).toBeLessThan(1);
  expect(table.entries[0]?.cost.params).toBe(Math.round(0.25 * 8) * 27 + 2);
  expect(table.layers[0]?.cost.params).toBe(8 * 27 + 8);
  model.getWeights().forEach((w, i) => {
    expect(w.dataSync()).toEqual(before[i]);
  });
});

it('resumes from the cache without recomputing finished entries', async () => {
  const store = new Map<string, ScanEntry>();
  const cache: ScanCache = { get: (k) => store.get(k), set: (k, e) => void store.set(k, e) };
  let evaluations = 0;
  const counting = async (m: tfl.LayersModel) => {
    evaluations++;
    return evaluate(m);
  };
  const options = {
    model,
    strategy: keepFilters,
    layers: ['conv1', 'conv2'],
    ratios: [0.5],
    evaluate: counting,
    calibrationSize: 64,
    cache,
  };
  const first = await scanSensitivity(options);
  expect(evaluations).toBe(3);
  expect(store.has(scanEntryKey(keepFilters, 'conv2', 0.5, 0))).toBe(true);
  const cached: boolean[] = [];
  const second = await scanSensitivity({ ...options, onProgress: (p) => cached.push(p.cached) });
  expect(evaluations).toBe(4); // only the baseline again
  expect(cached).toEqual([true, true]);
  expect(second.entries).toEqual(first.entries);
});

describe('the calibration path', () => {
  let normalised: tfl.LayersModel;
  // Labels that disagree with the model on some images, so accuracies and losses differ between entries.
  let noisyLabels: Int32Array;
  const split = () => ({ images, labels: noisyLabels, batchSize: 24 });
  beforeAll(() => {
    normalised = smallModel(true);
    noisyLabels = labels.map((label, i) => (i % 5 === 0 ? (label + 1) % 4 : label));
  });

  /** Accuracy and mean cross-entropy of the whole model on the images, computed directly. */
  async function wholeModelMetric(m: tfl.LayersModel): Promise<Metric> {
    const [accuracy, loss] = tf.tidy(() => {
      const logits = m.predict(images) as tf.Tensor2D;
      const truth = tf.tensor1d(noisyLabels, 'int32');
      const hits = tf.mean(tf.cast(tf.equal(tf.argMax(logits, -1), truth), 'float32'));
      const crossEntropy = tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(truth, 4), tf.logSoftmax(logits)), -1)));
      return [hits.dataSync()[0]!, crossEntropy.dataSync()[0]!];
    });
    return { accuracy, loss };
  }

  const expectSameMetrics = (got: SensitivityTable, want: SensitivityTable) => {
    expect(got.entries.map((e) => [e.layer, e.ratio])).toEqual(want.entries.map((e) => [e.layer, e.ratio]));
    for (const [i, entry] of got.entries.entries()) {
      expect(entry.metric.accuracy).toBeCloseTo(want.entries[i]!.metric.accuracy, 6);
      expect(Math.abs(entry.metric.loss - want.entries[i]!.metric.loss)).toBeLessThan(1e-4);
    }
    expect(got.baseline.accuracy).toBeCloseTo(want.baseline.accuracy, 6);
    expect(Math.abs(got.baseline.loss - want.baseline.loss)).toBeLessThan(1e-4);
  };

  it('measures what evaluating each whole model measures, leaking no tensors', async () => {
    const common = {
      model: normalised,
      strategy: keepFilters,
      layers: ['conv1', 'conv2'],
      ratios: [0.25, 0.5, 1],
    };
    const byCallback = await scanSensitivity({ ...common, evaluate: wholeModelMetric, calibrationSize: 64 });
    const bySplit = () => scanSensitivity({ ...common, calibration: split() });
    await bySplit();
    const tensors = tf.memory().numTensors;
    const table = await bySplit();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(table.calibrationSize).toBe(64);
    expect(new Set(table.entries.map((e) => e.metric.loss)).size).toBeGreaterThan(2);
    expectSameMetrics(table, byCallback);
  });

  it('evaluates fine-tuned entries whole, since fine-tuning changes the layers before the cut too', async () => {
    // A "fine-tune" that changes conv1 (in front of conv2): a frontier computed before it would be stale.
    const fineTune = {
      steps: 1,
      run: async (m: tfl.LayersModel) => {
        const layer = m.getLayer('conv1');
        const scaled = layer.getWeights().map((w) => tf.mul(w, 0.5));
        layer.setWeights(scaled);
        tf.dispose(scaled);
      },
    };
    const common = { model: normalised, strategy: keepFilters, layers: ['conv2'], ratios: [0.5], fineTune };
    const table = await scanSensitivity({ ...common, calibration: split() });
    const byCallback = await scanSensitivity({ ...common, evaluate: wholeModelMetric, calibrationSize: 64 });
    expectSameMetrics(table, byCallback);
  });
});

it('scans a tf.sequential model (calibration path), as it scans the same functional model', async () => {
  const seeded = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const stack = () => [
    tfl.layers.conv2d({
      name: 'conv1',
      filters: 8,
      kernelSize: 3,
      padding: 'same',
      kernelInitializer: seeded(1),
    }),
    tfl.layers.conv2d({
      name: 'conv2',
      filters: 8,
      kernelSize: 3,
      padding: 'same',
      kernelInitializer: seeded(2),
    }),
    tfl.layers.globalAveragePooling2d({ name: 'pool' }),
    tfl.layers.dense({ name: 'fc', units: 4, kernelInitializer: seeded(3) }),
  ];
  const sequentialModel = tfl.sequential({
    layers: [tfl.layers.inputLayer({ inputShape: [8, 8, 3] }), ...stack()],
  });
  const input = tfl.input({ shape: [8, 8, 3] });
  const functional = tfl.model({
    inputs: input,
    outputs: stack().reduce((h, layer) => layer.apply(h) as tfl.SymbolicTensor, input),
  });
  const common = { strategy: keepFilters, layers: ['conv1', 'conv2'], ratios: [0.5, 1] };
  const calibration = { images, labels };
  const scan = () => scanSensitivity({ ...common, model: sequentialModel, calibration });
  await scan();
  const tensors = tf.memory().numTensors;
  const table = await scan();
  expect(tf.memory().numTensors).toBe(tensors);
  const reference = await scanSensitivity({ ...common, model: functional, calibration });
  expect(table.entries.map((e) => e.metric.loss)).toEqual(
    reference.entries.map((e) => expect.closeTo(e.metric.loss, 5)),
  );
  sequentialModel.dispose();
  functional.dispose();
});

it('scans the layers of a nested sub-model (backbone + head) by path, as it scans the flat model', async () => {
  const seeded = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const convs = () => [
    tfl.layers.conv2d({
      name: 'conv1',
      filters: 8,
      kernelSize: 3,
      padding: 'same',
      kernelInitializer: seeded(1),
    }),
    tfl.layers.conv2d({
      name: 'conv2',
      filters: 8,
      kernelSize: 3,
      padding: 'same',
      kernelInitializer: seeded(2),
    }),
  ];
  const head = () => [
    tfl.layers.globalAveragePooling2d({ name: 'pool' }),
    tfl.layers.dense({ name: 'fc', units: 4, kernelInitializer: seeded(3) }),
  ];
  const chain = (h: tfl.SymbolicTensor, stack: tfl.layers.Layer[]) =>
    stack.reduce((t, layer) => layer.apply(t) as tfl.SymbolicTensor, h);
  const backbone = tfl.sequential({
    name: 'backbone',
    layers: [tfl.layers.inputLayer({ inputShape: [8, 8, 3] }), ...convs()],
  });
  const image = tfl.input({ shape: [8, 8, 3] });
  const nested = tfl.model({
    inputs: image,
    outputs: chain(backbone.apply(image) as tfl.SymbolicTensor, head()),
  });
  const flatInput = tfl.input({ shape: [8, 8, 3] });
  const flat = tfl.model({ inputs: flatInput, outputs: chain(chain(flatInput, convs()), head()) });
  const common = { strategy: keepFilters, ratios: [0.5, 1], calibration: { images, labels } };
  const scan = () =>
    scanSensitivity({ ...common, model: nested, layers: ['backbone/conv1', 'backbone/conv2'] });
  await scan();
  const tensors = tf.memory().numTensors;
  const table = await scan();
  expect(tf.memory().numTensors).toBe(tensors);
  expect(table.layers.map((l) => l.layer)).toEqual(['backbone/conv1', 'backbone/conv2']);
  const reference = await scanSensitivity({ ...common, model: flat, layers: ['conv1', 'conv2'] });
  expect(table.entries.map((e) => e.metric.loss)).toEqual(
    reference.entries.map((e) => expect.closeTo(e.metric.loss, 5)),
  );
  expect(table.entries.map((e) => e.cost)).toEqual(reference.entries.map((e) => e.cost));
  nested.dispose();
  flat.dispose();
});
