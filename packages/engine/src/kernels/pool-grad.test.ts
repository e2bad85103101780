import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { onWasmAndCpu, type Pad, relativeError, seededValues } from './parity-helpers.js';

interface PoolCase {
  name: string;
  shape: [number, number, number, number];
  size: number;
  stride: number;
  pad: Pad;
}

const cases: PoolCase[] = [
  { name: '2×2 s2 valid', shape: [2, 8, 8, 4], size: 2, stride: 2, pad: 'valid' },
  { name: '3×3 s2 same (overlapping windows)', shape: [2, 9, 9, 6], size: 3, stride: 2, pad: 'same' },
  { name: '3×3 s1 same', shape: [1, 7, 5, 3], size: 3, stride: 1, pad: 'same' },
  { name: '2×2 s1 valid, 16 channels', shape: [2, 6, 6, 16], size: 2, stride: 1, pad: 'valid' },
];

/** The gradient of Σ maxPool(x)·r; x holds repeated values, so ties are broken as the cpu backend does. */
function maxPoolGrad(c: PoolCase): Float32Array {
  return tf.tidy(() => {
    const values = seededValues(tf.util.sizeFromShape(c.shape), 1).map((v) => Math.round(v * 4) / 4);
    const x = tf.tensor4d(values, c.shape);
    const y = tf.maxPool(x, c.size, c.stride, c.pad as 'same');
    const r = tf.tensor(seededValues(y.size, 2), y.shape);
    const loss = (a: tf.Tensor) =>
      tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.size, c.stride, c.pad as 'same'), r));
    return tf.grad(loss)(x).dataSync() as Float32Array;
  });
}

/** The gradient of Σ avgPool(x)·r. */
function avgPoolGrad(c: PoolCase): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(c.shape), 1), c.shape);
    const y = tf.avgPool(x, c.size, c.stride, c.pad as 'same');
    const r = tf.tensor(seededValues(y.size, 2), y.shape);
    const loss = (a: tf.Tensor) =>
      tf.sum(tf.mul(tf.avgPool(a as tf.Tensor4D, c.size, c.stride, c.pad as 'same'), r));
    return tf.grad(loss)(x).dataSync() as Float32Array;
  });
}

describe('wasm AvgPoolGrad', () => {
  it.each(cases)('matches cpu for $name', async (c) => {
    const { wasm, cpu } = await onWasmAndCpu(() => avgPoolGrad(c));
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-6);
  });

  it('leaks no tensors', async () => {
    await initEngine({ backend: 'wasm' });
    const c = cases[1] as PoolCase;
    avgPoolGrad(c);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) avgPoolGrad(c);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('wasm MaxPoolGrad', () => {
  it.each(cases)('matches cpu for $name', async (c) => {
    const { wasm, cpu } = await onWasmAndCpu(() => maxPoolGrad(c));
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-6);
  });

  it('leaks no tensors', async () => {
    await initEngine({ backend: 'wasm' });
    const c = cases[1] as PoolCase;
    maxPoolGrad(c);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) maxPoolGrad(c);
    expect(tf.memory().numTensors).toBe(before);
  });
});
