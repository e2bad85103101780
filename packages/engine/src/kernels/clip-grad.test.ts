import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { maskedGradJs } from './clip-grad.js';
import { onWasmAndCpu, relativeError, seededValues } from './parity-helpers.js';

/** x in [-8, 8), with the interval ends themselves (0, 0.5, 6) among the values. */
function inputs(): { x: tf.Tensor; r: tf.Tensor } {
  const values = seededValues(2 * 8 * 8 * 12, 1).map((v) => v * 8);
  values.set([0, 0.5, 6, -0, 6.0000005, 5.9999995], 0);
  return {
    x: tf.tensor4d(values, [2, 8, 8, 12]),
    r: tf.tensor4d(seededValues(values.length, 2), [2, 8, 8, 12]),
  };
}

const gradOf = (f: (x: tf.Tensor) => tf.Tensor) => (): Float32Array =>
  tf.tidy(() => {
    const { x, r } = inputs();
    return tf
      .grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), r)))(x)
      .dataSync() as Float32Array;
  });

describe('ClipByValue, Relu6 and Relu gradients (one pass on wasm)', () => {
  it.each([
    ['clipByValue(x, 0, 6)', (x: tf.Tensor) => tf.clipByValue(x, 0, 6)],
    ['clipByValue(x, -1, 0.5)', (x: tf.Tensor) => tf.clipByValue(x, -1, 0.5)],
    ['relu6(x)', (x: tf.Tensor) => tf.relu6(x)],
    ['relu(x)', (x: tf.Tensor) => tf.relu(x)],
  ])('match cpu for %s, at the interval ends too', async (_, f) => {
    const { wasm, cpu } = await onWasmAndCpu(gradOf(f));
    expect(relativeError(wasm, cpu)).toBe(0);
  });

  it('have a JavaScript fallback (no wasm SIMD) that computes the same', async () => {
    await initEngine({ backend: 'cpu' });
    const { x, r, grad } = tf.tidy(() => {
      const { x, r } = inputs();
      const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.clipByValue(a, 0, 6), r)))(x);
      return { x: x.dataSync() as Float32Array, r: r.dataSync() as Float32Array, grad: grad.dataSync() };
    });
    const out = new Float32Array(x.length);
    maskedGradJs(r, x, out, { low: 0, high: 6, lowOpen: false });
    expect(Array.from(out)).toEqual(Array.from(grad));
  });

  it('leak no tensors', async () => {
    await initEngine({ backend: 'wasm' });
    const run = gradOf((x) => tf.relu6(tf.clipByValue(x, -1, 7)));
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 10; i++) run();
    expect(tf.memory().numTensors).toBe(before);
  });
});
