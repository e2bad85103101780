import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { seededValues } from './parity-helpers.js';

const cases: { shape: number[]; begin: number[]; size: number[] }[] = [
  { shape: [2, 6, 6, 4], begin: [0, 1, 1, 0], size: [2, 4, 4, 4] }, // a ZeroPadding2D gradient
  { shape: [2, 6, 6, 4], begin: [1, 0, 0, 0], size: [1, 6, 6, 4] }, // one whole image
  { shape: [2, 6, 6, 4], begin: [0, 0, 0, 1], size: [2, 6, 6, 2] }, // inner channels
  { shape: [3, 5], begin: [1, 2], size: [2, -1] },
  { shape: [7], begin: [2], size: [3] },
  { shape: [2, 3, 4], begin: [0, 0, 0], size: [2, 3, 4] },
  { shape: [2, 3, 4], begin: [0, 1, 0], size: [2, 0, 4] },
];

describe('Slice on wasm', () => {
  it.each(cases)(
    'equals the cpu backend for $shape sliced at $begin, size $size',
    async ({ shape, begin, size }) => {
      const values = seededValues(tf.util.sizeFromShape(shape), 5);
      await initEngine({ backend: 'cpu' });
      const expected = tf.tidy(() => Array.from(tf.slice(tf.tensor(values, shape), begin, size).dataSync()));
      await initEngine({ backend: 'wasm' });
      const actual = tf.tidy(() => tf.slice(tf.tensor(values, shape), begin, size));
      expect(Array.from(actual.dataSync())).toEqual(expected);
      actual.dispose();
    },
  );

  it('leaves int32 tensors to the backend’s own kernel', async () => {
    await initEngine({ backend: 'wasm' });
    const sliced = tf.tidy(() => tf.slice(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32'), [0, 1], [2, 2]));
    expect(Array.from(sliced.dataSync())).toEqual([2, 3, 5, 6]);
    sliced.dispose();
  });
});
