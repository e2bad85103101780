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

type Pool = 'max' | 'avg';

/**
 * The gradient of Σ pool(x)·r; for max pooling x holds repeated values, so ties are broken as the cpu backend
 * does.
 */
function poolGrad(pool: Pool, c: PoolCase): Float32Array {
  return tf.tidy(() => {
    const seeded = seededValues(tf.util.sizeFromShape(c.shape), 1);
    const x = tf.tensor4d(pool === 'max' ? seeded.map((v) => Math.round(v * 4) / 4) : seeded, c.shape);
    const run = (a: tf.Tensor) =>
      (pool === 'max' ? tf.maxPool : tf.avgPool)(a as tf.Tensor4D, c.size, c.stride, c.pad as 'same');
    const r = tf.tensor(seededValues(run(x).size, 2), run(x).shape);
    return tf
      .grad((a: tf.Tensor) => tf.sum(tf.mul(run(a), r)))(x)
      .dataSync() as Float32Array;
  });
}

describe.each(['max', 'avg'] as const)('wasm %sPoolGrad', (pool) => {
  it.each(cases)('matches cpu for $name', async (c) => {
    const { wasm, cpu } = await onWasmAndCpu(() => poolGrad(pool, c));
    expect(relativeError(wasm, cpu)).toBeLessThan(1e-6);
  });

  it('leaks no tensors', async () => {
    await initEngine({ backend: 'wasm' });
    const c = cases[1] as PoolCase;
    poolGrad(pool, c);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) poolGrad(pool, c);
    expect(tf.memory().numTensors).toBe(before);
  });
});
