import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { relativeError, seededValues } from './parity-helpers.js';

/** conv → BN → relu → conv → BN, + 1×1 projection shortcut, → relu → stride-2 conv → BN → relu → pool → dense. */
function residualNet(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  const conv = (filters: number, kernelSize: number, strides = 1) =>
    tfl.layers.conv2d({ filters, kernelSize, strides, padding: 'same', useBias: false });
  let x = conv(8, 3).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = conv(8, 3).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
  const shortcut = conv(8, 1).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.add().apply([x, shortcut]) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = conv(16, 3, 2).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: 10 }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

const batch = 4;
let model: tfl.LayersModel;

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  model = residualNet();
});
afterAll(() => model.dispose());

/** Loss and gradient of every trainable weight for one training-mode step (batch statistics in BN). */
function trainStep(): { loss: number; grads: Float32Array[] } {
  return tf.tidy(() => {
    const images = tf.tensor4d(seededValues(batch * 8 * 8 * 3, 5), [batch, 8, 8, 3]);
    const labels = tf.oneHot(tf.tensor1d([1, 4, 7, 9], 'int32'), 10);
    const weights = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(labels, model.apply(images, { training: true }) as tf.Tensor),
      weights,
    );
    return {
      loss: value.dataSync()[0] as number,
      grads: weights.map((w) => Float32Array.from((grads[w.name] as tf.Tensor).dataSync())),
    };
  });
}

describe('train step of a conv + BN + relu + residual net (stock tfjs-layers)', () => {
  it('gives the loss and every weight gradient of the cpu backend', async () => {
    await initEngine({ backend: 'cpu' });
    const cpu = trainStep();
    await initEngine({ backend: 'wasm' });
    const wasm = trainStep();
    expect(Math.abs(wasm.loss - cpu.loss) / Math.abs(cpu.loss)).toBeLessThan(1e-4);
    expect(wasm.grads).toHaveLength(model.trainableWeights.length);
    wasm.grads.forEach((grad, i) => {
      expect(relativeError(grad, cpu.grads[i] as Float32Array), model.trainableWeights[i]?.name).toBeLessThan(
        1e-4,
      );
    });
  });

  it('leaks no tensors over repeated steps on wasm', async () => {
    await initEngine({ backend: 'wasm' });
    trainStep();
    const afterFirst = tf.memory().numTensors;
    for (let step = 2; step <= 50; step++) trainStep();
    expect(tf.memory().numTensors).toBe(afterFirst);
  });
});
