// Basis convolutions apply to Conv1D and to SeparableConv2D's pointwise step through core's Conv2D view.
import {
  applyStrategy,
  costTable,
  exportStock,
  isStockLayerClass,
  maxOutputDifference,
} from '@decompose/core';
import { conv1dModel, separableModel } from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { basisStrategy } from './strategy.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const cases = [
  { name: 'SeparableConv2D', build: () => separableModel(), input: [2, 12, 12, 4] },
  { name: 'Conv1D', build: () => conv1dModel(), input: [2, 32, 4] },
];

it.each(cases)(
  'rewrites every $name exactly with a full basis, smaller with half of one, and exports to stock',
  (c) => {
    const original = c.build();
    const x = tf.randomNormal(c.input, 0, 1, 'float32', 3);
    const count = tf.memory().numTensors;
    const full = applyStrategy(original, basisStrategy, { options: { ratio: 1, allowFullRank: true } });
    expect(full.skipped).toEqual([]);
    expect(full.report).toHaveLength(3);
    expect(maxOutputDifference(full.model, original, x)).toBeLessThan(1e-4);
    const { model: stock } = exportStock(full.model);
    expect(stock.layers.every((l) => isStockLayerClass(l.getClassName()))).toBe(true);
    expect(maxOutputDifference(stock, original, x)).toBeLessThan(1e-4);
    stock.dispose();
    full.model.dispose();

    const half = applyStrategy(original, basisStrategy, { options: { ratio: 0.5 } });
    const rows = costTable(half.model).rows;
    for (const entry of half.report) {
      expect(entry.after.forwardMacs).toBeLessThan(entry.before.forwardMacs);
      const replaced = rows.filter((r) => entry.replacements.includes(r.name));
      expect(entry.after.params).toBe(replaced.reduce((n, r) => n + r.params, 0));
      expect(entry.after.forwardMacs).toBe(replaced.reduce((n, r) => n + r.forwardMacs, 0));
    }
    half.model.dispose();
    expect(tf.memory().numTensors).toBe(count);
    x.dispose();
    original.dispose();
  },
);
