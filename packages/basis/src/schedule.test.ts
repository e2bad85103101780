import { costTable } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { input, layers, model, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { BasisConv2D } from './basis-conv2d.js';
import { BasisConfigError } from './errors.js';
import { basisScheduleSchema, convertToBasis, planBasisTraining } from './schedule.js';
import { relativeDifference } from './test-helpers.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

function smallNet() {
  const x = input({ shape: [8, 8, 3] });
  const c1 = layers.conv2d({ name: 'c1', filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' });
  const c2 = layers.conv2d({ name: 'c2', filters: 12, kernelSize: 3, strides: 2, padding: 'same' });
  const y = c2.apply(c1.apply(x)) as SymbolicTensor;
  return model({ inputs: x, outputs: y });
}

describe('planBasisTraining', () => {
  it('converts before epoch 0 from scratch, or after the dense warm-up from the trained weights', () => {
    expect(planBasisTraining(basisScheduleSchema.parse({ kind: 'scratch' }), 10)).toEqual({
      convertBeforeEpoch: 0,
      init: 'scratch',
    });
    const warmup = basisScheduleSchema.parse({ kind: 'warmup', denseEpochs: 3 });
    expect(planBasisTraining(warmup, 10)).toEqual({ convertBeforeEpoch: 3, init: 'trained' });
    expect(() => planBasisTraining(warmup, 3)).toThrow(BasisConfigError);
    expect(basisScheduleSchema.safeParse({ kind: 'warmup', denseEpochs: 0 }).success).toBe(false);
  });
});

describe('convertToBasis', () => {
  it('rewrites a model through core surgery: exact at m = C_out, costed by the layer itself', () => {
    const dense = smallNet();
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 1);
    const expected = dense.predict(x) as tf.Tensor;
    const exact = convertToBasis(dense, {
      layers: ['c1', 'c2'],
      options: { ratio: 1, allowFullRank: true },
    });
    expect(relativeDifference(exact.model.predict(x) as tf.Tensor, expected)).toBeLessThan(1e-4);

    const half = convertToBasis(dense, { layers: ['c2'], options: { ratio: 0.5 } });
    const [report] = half.report;
    expect(report?.info?.m).toBe(6);
    expect(report?.info?.relativeError).toBeGreaterThan(0);
    expect(half.model.getLayer('c2')).toBeInstanceOf(BasisConv2D);
    const row = costTable(half.model).rows.find((r) => r.name === 'c2');
    expect(row?.source).toBe('layer');
    expect(row?.forwardMacs).toBe(report?.after.forwardMacs);
    expect(row?.params).toBe(half.model.getLayer('c2').countParams());
  });
});
