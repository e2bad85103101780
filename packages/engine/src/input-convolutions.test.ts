import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { initEngine } from './index.js';
import { skipInputGradients } from './input-convolutions.js';
import { relativeError, seededValues } from './kernels/parity-helpers.js';

const SHAPE: [number, number, number, number] = [2, 8, 8, 3];

/**
 * input → conv → relu, and input → zero padding → strided conv (with bias) → conv: the first two convolutions
 * read weight-free tensors, the last one does not. Weights seeded, so two builds are the same model.
 */
function twoStemModel(): tfl.LayersModel {
  const input = tfl.input({ shape: SHAPE.slice(1) });
  const stem = tfl.layers.conv2d({
    name: 'stem',
    filters: 4,
    kernelSize: 3,
    padding: 'same',
    useBias: false,
  });
  const padded = tfl.layers.zeroPadding2d({ padding: 1 }).apply(input) as tfl.SymbolicTensor;
  const strided = tfl.layers.conv2d({ name: 'strided', filters: 4, kernelSize: 3, strides: 2 });
  const after = tfl.layers.conv2d({
    name: 'after',
    filters: 4,
    kernelSize: 3,
    padding: 'same',
    useBias: false,
  });
  const a = tfl.layers.activation({ activation: 'relu' }).apply(stem.apply(input)) as tfl.SymbolicTensor;
  const b = after.apply(strided.apply(padded)) as tfl.SymbolicTensor;
  const pooled = [a, b].map((t) => tfl.layers.globalAveragePooling2d({}).apply(t) as tfl.SymbolicTensor);
  const model = tfl.model({
    inputs: input,
    outputs: tfl.layers.concatenate().apply(pooled) as tfl.SymbolicTensor,
  });
  const weights = model.getWeights().map((w, i) => tf.tensor(seededValues(w.size, 20 + i), w.shape));
  model.setWeights(weights);
  tf.dispose(weights);
  return model;
}

/** Σ output·r's gradients towards every trainable weight, in training mode, and the kernels the step ran. */
async function trainingGradients(
  model: tfl.LayersModel,
): Promise<{ grads: Float32Array[]; kernels: string[] }> {
  let grads: Float32Array[] = [];
  const profile = await tf.profile(() => {
    tf.tidy(() => {
      const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(SHAPE), 1), SHAPE);
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads: byName } = tf.variableGrads(() => {
        const y = model.apply(x, { training: true }) as tf.Tensor;
        return tf.sum(tf.mul(y, tf.tensor(seededValues(y.size, 2), y.shape)));
      }, variables);
      grads = variables.map((v) => byName[v.name]?.dataSync() as Float32Array);
    });
  });
  return { grads, kernels: profile.kernels.map((k) => k.name) };
}

describe('skipInputGradients', () => {
  it('changes the convolutions of weight-free inputs only, once', async () => {
    await initEngine({ backend: 'wasm' });
    const model = twoStemModel();
    expect(skipInputGradients(model)).toEqual(['stem', 'strided']);
    const call = model.getLayer('stem').call;
    expect(skipInputGradients(model)).toEqual(['stem', 'strided']);
    expect(model.getLayer('stem').call).toBe(call);
    model.dispose();
  });

  it.each(['wasm', 'cpu'] as const)(
    'keeps the gradients and drops the stems’ input gradients on %s',
    async (backend) => {
      await initEngine({ backend });
      const stock = twoStemModel();
      const changed = twoStemModel();
      skipInputGradients(changed);
      const before = await trainingGradients(stock);
      const after = await trainingGradients(changed);
      expect(after.grads).toHaveLength(before.grads.length);
      after.grads.forEach((g, i) => {
        expect(relativeError(g, before.grads[i] as Float32Array)).toBeLessThan(1e-5);
      });
      const inputGradients = (kernels: string[]) => kernels.filter((k) => k === 'Conv2DBackpropInput').length;
      expect(inputGradients(before.kernels)).toBe(3);
      expect(inputGradients(after.kernels)).toBe(1);
      stock.dispose();
      changed.dispose();
    },
  );

  it('leaves inference alone and leaks no tensors', async () => {
    await initEngine({ backend: 'wasm' });
    const model = twoStemModel();
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(SHAPE), 3), SHAPE);
    const stock = (model.predict(x) as tf.Tensor).dataSync();
    skipInputGradients(model);
    const predicted = model.predict(x) as tf.Tensor;
    expect(Array.from(predicted.dataSync())).toEqual(Array.from(stock));
    predicted.dispose();
    await trainingGradients(model);
    const tensors = tf.memory().numTensors;
    await trainingGradients(model);
    expect(tf.memory().numTensors).toBe(tensors);
    x.dispose();
    model.dispose();
  });
});
