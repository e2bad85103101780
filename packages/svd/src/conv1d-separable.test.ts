// SVD applies to Conv1D and to SeparableConv2D's pointwise step through core's Conv2D view, with no code of its own.
import { applyStrategy, costTable, exportStock, maxOutputDifference } from '@decompose/core';
import { conv1dModel, separableModel } from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { svdStrategy } from './strategy.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const cases = [
  {
    name: 'SeparableConv2D',
    build: () => separableModel(),
    input: [2, 12, 12, 4],
    fullRanks: { sep1: 4, sep2: 12, sep3: 6 },
  },
  { name: 'Conv1D', build: () => conv1dModel(), input: [2, 32, 4], fullRanks: { c1: 8, c2: 8, c3: 6 } },
];

it.each(cases)(
  'rewrites every $name exactly at full rank, and smaller at ratio 0.5 as costTable counts',
  (c) => {
    const original = c.build();
    const x = tf.randomNormal(c.input, 0, 1, 'float32', 3);
    const count = tf.memory().numTensors;
    const full = applyStrategy(original, svdStrategy, {
      options: { mode: 'weight' },
      perLayerOptions: Object.fromEntries(
        Object.entries(c.fullRanks).map(([layer, rank]) => [layer, { rank }]),
      ),
    });
    expect(full.report.map((r) => r.layer)).toEqual(Object.keys(c.fullRanks));
    expect(maxOutputDifference(full.model, original, x)).toBeLessThan(1e-4);
    const { model: stock } = exportStock(full.model);
    expect(maxOutputDifference(stock, original, x)).toBeLessThan(1e-4);
    stock.dispose();
    full.model.dispose();

    const half = applyStrategy(original, svdStrategy, { options: { mode: 'weight', ratio: 0.5 } });
    const rows = costTable(half.model).rows;
    for (const entry of half.report) {
      expect(entry.after.params).toBeLessThan(entry.before.params);
      expect(entry.after.forwardMacs).toBeLessThan(entry.before.forwardMacs);
      const replaced = rows.filter((r) => entry.replacements.includes(r.name));
      expect(entry.after.params).toBe(replaced.reduce((n, r) => n + r.params, 0));
      expect(entry.after.forwardMacs).toBe(replaced.reduce((n, r) => n + r.forwardMacs, 0));
    }
    expect(costTable(half.model).total.params).toBeLessThan(costTable(original).total.params);
    half.model.dispose();
    expect(tf.memory().numTensors).toBe(count);
    x.dispose();
    original.dispose();
  },
);
