import { convCost, type DecompositionStrategy } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { type ScanCache, scanEntryKey, scanSensitivity } from './scan.js';
import type { Metric, ScanEntry } from './table.js';

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

function smallModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  const c1 = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'conv1' });
  const c2 = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'conv2' });
  const x = c1.apply(input) as tfl.SymbolicTensor;
  const y = tfl.layers.add().apply([x, c2.apply(x) as tfl.SymbolicTensor]) as tfl.SymbolicTensor;
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
