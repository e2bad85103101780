// Tucker-2 applies to Conv1D and to SeparableConv2D's pointwise step through core's Conv2D view.
import { applyStrategy, costTable, maxOutputDifference } from '@decompose/core';
import { conv1dModel, separableModel } from '@decompose/core/testing';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { tuckerStrategy } from './strategy.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

it('rewrites a Conv1D exactly at full ranks, and a SeparableConv2D smaller at ratio 0.5 as costTable counts', () => {
  const sequences = conv1dModel();
  const x = tf.randomNormal([2, 32, 4], 0, 1, 'float32', 3);
  const full = applyStrategy(sequences, tuckerStrategy, { layers: ['c2'], options: { ranks: [8, 8] } });
  expect(full.report[0]!.replacements).toEqual([
    'c2_to2d',
    'c2_tucker_in',
    'c2_tucker_core',
    'c2_tucker_out',
    'c2_to1d',
  ]);
  expect(maxOutputDifference(full.model, sequences, x)).toBeLessThan(1e-4);
  full.model.dispose();

  const images = separableModel();
  const half = applyStrategy(images, tuckerStrategy, { layers: ['sep2'], options: { ratio: 0.5 } });
  const [entry] = half.report;
  const replaced = costTable(half.model).rows.filter((r) => entry!.replacements.includes(r.name));
  expect(entry!.after.params).toBeLessThan(entry!.before.params);
  expect(entry!.after.params).toBe(replaced.reduce((n, r) => n + r.params, 0));
  expect(entry!.after.forwardMacs).toBe(replaced.reduce((n, r) => n + r.forwardMacs, 0));
  half.model.dispose();
  tf.dispose(x);
  sequences.dispose();
  images.dispose();
});
