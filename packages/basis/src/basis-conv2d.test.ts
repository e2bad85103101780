import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { input, layers, loadLayersModel, model, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BasisConv2D, type BasisConv2DArgs } from './basis-conv2d.js';
import { BasisConfigError } from './errors.js';
import { basisFromTrained } from './strategy.js';
import { randomConv, relativeDifference } from './test-helpers.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

function built(args: BasisConv2DArgs, inChannels: number, size = 6): BasisConv2D {
  const layer = new BasisConv2D(args);
  layer.build([null, size, size, inChannels]);
  return layer;
}

function randomInput(shape: [number, number, number, number], seed = 3): tf.Tensor4D {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

describe('BasisConv2D', () => {
  it('computes y = A·conv(x, B) in output order, with bias and activation', () => {
    const layer = built(
      {
        filters: 5,
        basisSize: 2,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        outputOrder: [2, 0, 3, 1, 4],
        seed: 1,
      },
      3,
    );
    layer.setWeights([
      layer.getWeights()[0]!,
      tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]),
      tf.tensor1d([0.1, 0.2, 0.3, 0.4, 0.5]),
    ]);
    const x = randomInput([2, 6, 6, 3]);
    const y = layer.apply(x) as tf.Tensor4D;
    const z = tf.conv2d(x, layer.getWeights()[0] as tf.Tensor4D, 1, 'same');
    const [z0, z1] = tf.split(z, 2, 3);
    // internal outputs: z0, z1, 1·z0+4·z1, 2·z0+5·z1, 3·z0+6·z1; channel j is internal order[j].
    const combine = (a: number, b: number) => tf.add(tf.mul(z0!, a), tf.mul(z1!, b));
    const internal = [z0!, z1!, combine(1, 4), combine(2, 5), combine(3, 6)];
    const ordered = tf.concat(
      [2, 0, 3, 1, 4].map((t) => internal[t]!),
      3,
    );
    const expected = tf.relu(tf.add(ordered, tf.tensor1d([0.1, 0.2, 0.3, 0.4, 0.5])));
    expect(y.shape).toEqual([2, 6, 6, 5]);
    expect(relativeDifference(y, expected)).toBeLessThan(1e-5);
  });

  it('computes output shapes for strides and valid padding', () => {
    const layer = new BasisConv2D({ filters: 8, basisSize: 4, kernelSize: 3, strides: 2, padding: 'valid' });
    expect(layer.computeOutputShape([null, 9, 10, 3])).toEqual([null, 4, 4, 8]);
    const y = layer.apply(tf.zeros([1, 9, 10, 3])) as tf.Tensor;
    expect(y.shape).toEqual([1, 4, 4, 8]);
  });

  it('reproduces a trained conv exactly when m = C_out (shrunk and full forms)', () => {
    const { layer: dense, target } = randomConv({ inChannels: 4, filters: 6, strides: 2, seed: 5 });
    const x = randomInput([2, 8, 8, 4]);
    const expected = dense.apply(x) as tf.Tensor;
    for (const form of ['shrunk', 'full'] as const) {
      const {
        layers: basisLayers,
        weights,
        info,
      } = basisFromTrained(
        {
          ...target,
          kernel: target.kernel!,
          strides: [2, 2],
          padding: 'same',
          dilation: [1, 1],
          activation: 'linear',
        },
        { m: 6, form },
      );
      const layer = basisLayers[0];
      layer.build([null, 8, 8, 4]);
      layer.setWeights(weights[0]!);
      expect(info?.relativeError).toBeLessThan(1e-6);
      expect(relativeDifference(layer.apply(x) as tf.Tensor, expected)).toBeLessThan(1e-4);
    }
  });

  it('toDense() folds W = A·B into an equivalent Conv2D', () => {
    const layer = built(
      {
        filters: 6,
        basisSize: 3,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        outputOrder: [3, 0, 4, 1, 5, 2],
        seed: 2,
      },
      4,
      8,
    );
    const { config, weights } = layer.toDense();
    const dense = layers.conv2d({ ...config, weights });
    const x = randomInput([2, 8, 8, 4]);
    expect(relativeDifference(dense.apply(x) as tf.Tensor, layer.apply(x) as tf.Tensor)).toBeLessThan(1e-5);
  });

  it.each([
    ['factored', 'linear'],
    ['factored', 'relu'],
    ['factored', 'relu6'],
    ['factored', 'elu'],
    ['folded', 'relu6'],
  ] as const)('has the gradients of the dense conv with W = A·B (%s, %s, cpu)', (execution, activation) => {
    const order = [1, 4, 0, 2, 3];
    const layer = built(
      {
        filters: 5,
        basisSize: 2,
        kernelSize: 3,
        padding: 'same',
        outputOrder: order,
        seed: 4,
        execution,
        activation,
      },
      3,
    );
    const [basis, coefficients] = layer.getWeights() as [tf.Tensor4D, tf.Tensor2D];
    const bias = tf.tensor1d([0.5, -0.5, 1, 0, -1]);
    layer.setWeights([basis, coefficients, bias]);
    // Scaled so that relu6 clamps some outputs at 6 as well as at 0.
    const x = tf.mul(randomInput([2, 6, 6, 3]), 4);
    const probe = randomInput([2, 6, 6, 5], 9);
    const loss = (y: tf.Tensor) => tf.sum(tf.mul(y, probe)) as tf.Scalar;
    const activate = { linear: (t: tf.Tensor) => t, relu: tf.relu, relu6: tf.relu6, elu: tf.elu }[activation];
    // Reference: a plain conv whose kernel is B·[I | A'ᵀ] with columns in output order, from core ops.
    const reference = (xs: tf.Tensor, b: tf.Tensor, a: tf.Tensor, c: tf.Tensor) => {
      const mixing = tf.gather(tf.concat([tf.eye(2), a], 1), order, 1);
      const kernel = tf.reshape(tf.matMul(tf.reshape(b, [27, 2]), mixing), [3, 3, 3, 5]) as tf.Tensor4D;
      return loss(activate(tf.add(tf.conv2d(xs as tf.Tensor4D, kernel, 1, 'same'), c)));
    };
    const expected = tf.grads(reference)([x, basis, coefficients, bias]);
    const ours = tf.grad((xs: tf.Tensor) => loss(layer.apply(xs) as tf.Tensor))(x);
    const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => loss(layer.apply(x) as tf.Tensor), variables);
    const actual = [ours, ...variables.map((v) => grads[v.name]!)];
    expected.forEach((gradient, i) => {
      expect(relativeDifference(actual[i]!, gradient)).toBeLessThan(1e-5);
    });
  });

  it('round-trips through save and tf.loadLayersModel', async () => {
    const inp = input({ shape: [6, 6, 3] });
    const out = new BasisConv2D({
      filters: 4,
      basisSize: 2,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu6',
      outputOrder: [1, 3, 0, 2],
      seed: 8,
    }).apply(inp) as SymbolicTensor;
    const original = model({ inputs: inp, outputs: out });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await original.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await loadLayersModel(tf.io.fromMemory(artifacts!));
    const restored = loaded.layers[1];
    expect(restored).toBeInstanceOf(BasisConv2D);
    expect((restored as BasisConv2D).outputOrder).toEqual([1, 3, 0, 2]);
    const x = randomInput([1, 6, 6, 3]);
    expect(relativeDifference(loaded.predict(x) as tf.Tensor, original.predict(x) as tf.Tensor)).toBeLessThan(
      1e-6,
    );
  });

  it('rejects bad configurations with BasisConfigError', () => {
    const base = { filters: 4, basisSize: 2, kernelSize: 3 };
    const bad: Partial<BasisConv2DArgs>[] = [
      { basisSize: 5 },
      { basisSize: 0 },
      { filters: 2.5 },
      { kernelSize: 0 },
      { strides: 2, dilationRate: 2 },
      { activation: 'tanh' as 'relu' },
      { outputOrder: [0, 1, 2, 2] },
      { form: 'full', outputOrder: [0, 1, 2, 3] },
      { execution: 'fast' as 'auto' },
    ];
    for (const change of bad) {
      expect(() => new BasisConv2D({ ...base, ...change })).toThrow(BasisConfigError);
    }
    expect(() => new BasisConv2D({ ...base, basisSize: 5 })).toThrow(
      /basisSize must be an integer in \[1, filters = 4\]/,
    );
  });

  it('trains without leaking tensors (permuted with bias and relu, identity order without)', () => {
    const configs: BasisConv2DArgs[] = [
      {
        filters: 6,
        basisSize: 2,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        outputOrder: [5, 0, 1, 2, 3, 4],
      },
      { filters: 6, basisSize: 2, kernelSize: 3, padding: 'same', useBias: false, form: 'full' },
      { filters: 6, basisSize: 2, kernelSize: 3, padding: 'same', useBias: false },
    ];
    const x = randomInput([2, 6, 6, 3]);
    for (const config of configs) {
      const layer = built(config, 3);
      const optimizer = tf.train.sgd(0.01);
      const step = () =>
        optimizer.minimize(() => tf.mean(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar, false);
      step();
      const before = tf.memory().numTensors;
      const initial = layer.getWeights()[1]!.dataSync()[0];
      for (let i = 0; i < 3; i++) step();
      expect(tf.memory().numTensors).toBe(before);
      expect(layer.getWeights()[1]!.dataSync()[0]).not.toBe(initial);
    }
  });
});

describe('BasisConv2D on the wasm backend', () => {
  beforeAll(async () => {
    await initEngine();
  });
  afterAll(async () => {
    await initEngine({ backend: 'cpu' });
  });

  it('gives the folded layer its outputs and gradients through the fused matMul kernel', () => {
    const args: BasisConv2DArgs = {
      filters: 6,
      basisSize: 2,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu6',
    };
    const factored = built({ ...args, execution: 'factored', seed: 6 }, 3);
    const folded = built({ ...args, execution: 'folded' }, 3);
    const [basis, coefficients] = factored.getWeights();
    const weights = [basis!, coefficients!, tf.tensor1d([0.5, -0.5, 1, 0, -1, 2])];
    factored.setWeights(weights);
    folded.setWeights(weights);
    const x = tf.mul(randomInput([2, 6, 6, 3]), 4);
    const probe = randomInput([2, 6, 6, 6], 9);
    const gradients = (layer: BasisConv2D) => {
      const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      const loss = () => tf.sum(tf.mul(layer.apply(x) as tf.Tensor, probe)) as tf.Scalar;
      const { grads } = tf.variableGrads(loss, variables);
      return [layer.apply(x) as tf.Tensor, ...variables.map((v) => grads[v.name]!)];
    };
    const expected = gradients(folded);
    gradients(factored).forEach((actual, i) => {
      expect(relativeDifference(actual, expected[i]!)).toBeLessThan(1e-5);
    });
  });
});
