import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { accelerateBatchNormTraining } from './batch-norm-training.js';
import { initEngine } from './index.js';
import { relativeError, seededValues } from './kernels/parity-helpers.js';

type Shape4 = [number, number, number, number];

/** A conv → BN → relu model whose BN has non-trivial γ, β and moving statistics. */
function convBnModel(shape: Shape4): tfl.LayersModel {
  const input = tfl.input({ shape: shape.slice(1) });
  // No conv bias: training-mode BN cancels it, so its gradient is rounding noise.
  const conv = tfl.layers.conv2d({
    name: 'conv',
    filters: shape[3],
    kernelSize: 3,
    padding: 'same',
    useBias: false,
  });
  const bn = tfl.layers.batchNormalization({ name: 'bn', axis: -1, momentum: 0.9, epsilon: 1e-5 });
  const relu = tfl.layers.activation({ activation: 'relu' });
  const model = tfl.model({
    inputs: input,
    outputs: relu.apply(bn.apply(conv.apply(input))) as tfl.SymbolicTensor,
  });
  const channels = shape[3];
  const weights = model.getWeights().map((w, i) =>
    tf.tensor(
      seededValues(w.size, 10 + i).map((v) => (i >= 3 ? 1 + 0.5 * Math.abs(v) : v)),
      w.shape,
    ),
  );
  model.setWeights(weights);
  tf.dispose(weights);
  expect(
    model
      .getLayer('bn')
      .getWeights()
      .map((w) => w.shape),
  ).toEqual([[channels], [channels], [channels], [channels]]);
  return model;
}

interface TrainingCall {
  output: Float32Array;
  /** Gradients of Σ output·r for x and every trainable weight. */
  grads: Float32Array[];
  movingStatistics: Float32Array[];
}

function trainingCall(model: tfl.LayersModel, shape: Shape4): TrainingCall {
  return tf.tidy(() => {
    // Offset inputs make x − mean matter, as after a relu.
    const x = tf.add(tf.tensor4d(seededValues(tf.util.sizeFromShape(shape), 1), shape), 0.7);
    const r = tf.tensor4d(seededValues(tf.util.sizeFromShape(shape), 2), shape);
    let output: Float32Array = new Float32Array();
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const f = (input: tf.Tensor): tf.Scalar => {
      const y = model.apply(input, { training: true }) as tf.Tensor;
      output = y.dataSync() as Float32Array;
      return tf.sum(tf.mul(y, r));
    };
    const xGrad = tf.grad(f)(x).dataSync() as Float32Array;
    const { grads } = tf.variableGrads(() => f(x), variables);
    const bn = model.getLayer('bn');
    const movingStatistics = bn
      .getWeights()
      .slice(2)
      .map((w) => w.dataSync() as Float32Array);
    return {
      output,
      grads: [xGrad, ...variables.map((v) => grads[v.name]?.dataSync() as Float32Array)],
      movingStatistics,
    };
  });
}

function expectClose(actual: TrainingCall, expected: TrainingCall, tolerance: number): void {
  expect(relativeError(actual.output, expected.output)).toBeLessThan(tolerance);
  expect(actual.grads).toHaveLength(expected.grads.length);
  for (const g of actual.grads) expect(g.length).toBeGreaterThan(0);
  const errors = actual.grads.map((g, i) => relativeError(g, expected.grads[i] as Float32Array));
  expect(
    errors.every((e) => e < tolerance),
    `gradient errors ${errors.join(', ')}`,
  ).toBe(true);
  actual.movingStatistics.forEach((m, i) => {
    expect(relativeError(m, expected.movingStatistics[i] as Float32Array)).toBeLessThan(tolerance);
  });
}

describe('accelerateBatchNormTraining', () => {
  it.each([
    { shape: [2, 16, 16, 16] as Shape4 },
    { shape: [2, 8, 8, 32] as Shape4 },
    { shape: [2, 4, 4, 6] as Shape4 },
  ])(
    'gives the stock layer’s outputs, gradients and moving statistics for x of shape $shape, on cpu and wasm',
    async ({ shape }) => {
      for (const backend of ['cpu', 'wasm'] as const) {
        await initEngine({ backend });
        const stock = convBnModel(shape);
        const fast = convBnModel(shape);
        expect(accelerateBatchNormTraining(fast)).toEqual(['bn']);
        expectClose(trainingCall(fast, shape), trainingCall(stock, shape), 1e-4);
        stock.dispose();
        fast.dispose();
      }
    },
  );

  it('leaves inference calls and the layer’s class and config as they were', async () => {
    await initEngine({ backend: 'wasm' });
    const shape: Shape4 = [2, 8, 8, 16];
    const model = convBnModel(shape);
    const config = JSON.stringify(model.getLayer('bn').getConfig());
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(shape), 3), shape);
    const before = (model.predict(x) as tf.Tensor).dataSync();
    accelerateBatchNormTraining(model);
    accelerateBatchNormTraining(model);
    const after = (model.predict(x) as tf.Tensor).dataSync();
    expect(Array.from(after)).toEqual(Array.from(before));
    expect(model.getLayer('bn').getClassName()).toBe('BatchNormalization');
    expect(JSON.stringify(model.getLayer('bn').getConfig())).toBe(config);
    x.dispose();
    model.dispose();
  });

  it('fuses a relu that alone reads the BatchNorm, and no other', async () => {
    await initEngine({ backend: 'wasm' });
    const shape: Shape4 = [2, 8, 8, 16];
    const kernelsOfStep = async (model: tfl.LayersModel) =>
      (
        await tf.profile(() => {
          trainingCall(model, shape);
        })
      ).kernels.map((k) => k.name);
    const fused = convBnModel(shape);
    accelerateBatchNormTraining(fused);
    const kernels = await kernelsOfStep(fused);
    expect(kernels).toContain('DecomposeBatchNormTrain');
    expect(kernels).not.toContain('Relu');
    fused.dispose();
    // A second reader of the BatchNorm's output (a residual sum) keeps the relu a layer of its own.
    const build = () => {
      const input = tfl.input({ shape: shape.slice(1) });
      const bn = tfl.layers.batchNormalization({ name: 'bn' }).apply(input) as tfl.SymbolicTensor;
      const relu = tfl.layers.activation({ activation: 'relu' }).apply(bn) as tfl.SymbolicTensor;
      return tfl.model({ inputs: input, outputs: tfl.layers.add().apply([relu, bn]) as tfl.SymbolicTensor });
    };
    const stock = build();
    const branched = build();
    accelerateBatchNormTraining(branched);
    expectClose(trainingCall(branched, shape), trainingCall(stock, shape), 1e-4);
    expect(await kernelsOfStep(branched)).toContain('Relu');
    stock.dispose();
    branched.dispose();
  });

  it('does not leak tensors across training steps', async () => {
    await initEngine({ backend: 'wasm' });
    const shape: Shape4 = [2, 8, 8, 16];
    const model = convBnModel(shape);
    accelerateBatchNormTraining(model);
    trainingCall(model, shape);
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) trainingCall(model, shape);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });
});
