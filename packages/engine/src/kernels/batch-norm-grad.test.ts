import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { relativeError, seededValues } from './parity-helpers.js';

const epsilon = 1e-3;

/** Training-mode batch norm as tfjs-layers runs it: batch moments, then the FusedBatchNorm kernel. */
function fusedBatchNorm(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, epsilon);
}

/** The same function from elementwise ops only, so its gradient never touches FusedBatchNorm's. */
function elementwiseBatchNorm(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const normalized = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
  return tf.add(tf.mul(normalized, gamma), beta) as tf.Tensor4D;
}

type BatchNormFn = typeof fusedBatchNorm;

function batchNormGrads(shape: [number, number, number, number], bn: BatchNormFn): Float32Array[] {
  return tf.tidy(() => {
    const channels = shape[3];
    // An offset mean makes x − mean matter, as after a relu.
    const x = tf.add(tf.tensor4d(seededValues(tf.util.sizeFromShape(shape), 1), shape), 0.7) as tf.Tensor4D;
    const gamma = tf.tensor1d(seededValues(channels, 2));
    const beta = tf.tensor1d(seededValues(channels, 3));
    const r = tf.tensor4d(seededValues(tf.util.sizeFromShape(shape), 4), shape);
    const loss = (xs: tf.Tensor, gs: tf.Tensor, bs: tf.Tensor) =>
      tf.sum(tf.mul(bn(xs as tf.Tensor4D, gs as tf.Tensor1D, bs as tf.Tensor1D), r));
    return tf
      .grads(loss)([x, gamma, beta])
      .map((g) => g.dataSync() as Float32Array);
  });
}

describe('FusedBatchNorm gradient', () => {
  it.each([
    { shape: [2, 32, 32, 16] },
    { shape: [2, 16, 16, 32] },
    { shape: [2, 8, 8, 64] },
    { shape: [1, 4, 4, 512] },
  ] as { shape: [number, number, number, number] }[])(
    'matches the elementwise reference on cpu for x of shape $shape, on wasm and cpu',
    async ({ shape }) => {
      await initEngine({ backend: 'cpu' });
      const reference = batchNormGrads(shape, elementwiseBatchNorm);
      const onCpu = batchNormGrads(shape, fusedBatchNorm);
      await initEngine({ backend: 'wasm' });
      const onWasm = batchNormGrads(shape, fusedBatchNorm);
      for (let i = 0; i < reference.length; i++) {
        expect(relativeError(onCpu[i] as Float32Array, reference[i] as Float32Array)).toBeLessThan(1e-4);
        expect(relativeError(onWasm[i] as Float32Array, reference[i] as Float32Array)).toBeLessThan(1e-4);
      }
    },
  );
});
