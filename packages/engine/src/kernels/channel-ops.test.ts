import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { relativeError, seededValues } from './parity-helpers.js';

const full = [2, 6, 5, 8];
const ops: [string, (x: tf.Tensor, c: tf.Tensor) => tf.Tensor][] = [
  ['sum over N, H, W', (x) => tf.sum(x, [0, 1, 2])],
  ['sum over N, H, W keeping dims', (x) => tf.sum(x, [2, 0, 1], true)],
  ['sum over N, H, W of 3 channels', (x) => tf.sum(tf.slice(x, [0, 0, 0, 0], [2, 6, 5, 3]), [0, 1, 2])],
  ['sum over H only (backend path)', (x) => tf.sum(x, 1)],
  ['mean over N, H, W', (x) => tf.mean(x, [0, 1, 2])],
  ['mean over everything (backend path)', (x) => tf.mean(x)],
  ['x · c', (x, c) => tf.mul(x, c)],
  ['c · x with c [1,1,1,C]', (x, c) => tf.mul(tf.reshape(c, [1, 1, 1, 8]), x)],
  ['x + c', (x, c) => tf.add(x, c)],
  ['c + x', (x, c) => tf.add(c, x)],
  ['x − c', (x, c) => tf.sub(x, c)],
  ['c − x', (x, c) => tf.sub(c, x)],
  ['x · x (backend path)', (x) => tf.mul(x, x)],
  ['x · scalar (backend path)', (x) => tf.mul(x, 3)],
  ['broadcastTo of a channel vector', (_, c) => tf.broadcastTo(tf.reshape(c, [1, 1, 1, 8]), full)],
  ['tile along channels', (_, c) => tf.tile(tf.reshape(c, [1, 8]), [3, 2])],
  ['tile of a pooled [N, 1, 1, C] over H, W', (x) => tf.tile(tf.mean(x, [1, 2], true), [1, 3, 4, 1])],
  ['tile along three axes', (x) => tf.tile(tf.slice(x, [0, 0, 0, 0], [2, 2, 3, 8]), [2, 1, 3, 2])],
  ['tile of int32 values', (x) => tf.tile(tf.cast(tf.mul(x, 10), 'int32'), [2, 1, 1, 1])],
  ['tile by ones', (x) => tf.tile(x, [1, 1, 1, 1])],
  ['clone and same-type cast', (x) => tf.add(tf.cast(x.clone(), 'float32'), 1)],
  ['cast to int32 (backend path)', (x) => tf.cast(tf.mul(x, 10), 'int32')],
];

function run(op: (x: tf.Tensor, c: tf.Tensor) => tf.Tensor): Float32Array {
  return tf.tidy(() => {
    const x = tf.tensor(seededValues(tf.util.sizeFromShape(full), 1), full);
    const c = tf.tensor1d(seededValues(8, 2));
    return Float32Array.from(op(x, c).dataSync());
  });
}

describe('wasm per-channel kernels', () => {
  it.each(ops)('%s matches cpu', async (_, op) => {
    await initEngine({ backend: 'cpu' });
    const expected = run(op);
    await initEngine({ backend: 'wasm' });
    const actual = run(op);
    expect(actual.length).toBe(expected.length);
    expect(relativeError(actual, expected)).toBeLessThan(1e-6);
  });

  it('Mean gradient matches cpu and frees what it allocates', async () => {
    const grad = (): Float32Array =>
      tf.tidy(() => {
        const x = tf.tensor(seededValues(tf.util.sizeFromShape(full), 3), full);
        const r = tf.tensor1d(seededValues(8, 4));
        return Float32Array.from(
          tf
            .grad((xs: tf.Tensor) => tf.sum(tf.mul(tf.mean(xs, [0, 1, 2]), r)))(x)
            .dataSync(),
        );
      });
    await initEngine({ backend: 'cpu' });
    const expected = grad();
    await initEngine({ backend: 'wasm' });
    const before = tf.memory().numTensors;
    expect(relativeError(grad(), expected)).toBeLessThan(1e-6);
    expect(tf.memory().numTensors).toBe(before);
  });
});
