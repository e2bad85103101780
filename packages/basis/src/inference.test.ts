import { inferenceModel } from '@decompose/core';
import { randomizeBatchNorms, relativeDifference, savedAndLoaded } from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import {
  model as functionalModel,
  input,
  type LayersModel,
  layers,
  type SymbolicTensor,
} from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BasisConv2D } from './basis-conv2d.js';
import { BasisDense } from './basis-dense.js';
import { convertToBasis } from './schedule.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

function predicted(net: LayersModel, x: tf.Tensor): tf.Tensor {
  return net.predict(x) as tf.Tensor;
}

const difference = (a: LayersModel, b: LayersModel, x: tf.Tensor) =>
  tf.tidy(() => relativeDifference(predicted(a, x), predicted(b, x)));

describe('inferenceModel of a basis 0.5 ResNet-20', () => {
  let compressed: LayersModel;
  let images: tf.Tensor4D;
  beforeAll(() => {
    const dense = createCifarResNet({ arch: 'resnet20', seed: 2 });
    randomizeBatchNorms(dense, 11);
    compressed = convertToBasis(dense, { layers: 'stage*.**', options: { ratio: 0.5 } }).model;
    dense.dispose();
    images = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 3);
  });
  afterAll(() => {
    compressed.dispose();
    images.dispose();
  });

  it('folds every BatchNorm into the BasisConv2D (or stem Conv2D) before it, fusing the relus, as the original predicts', async () => {
    const { model: inference, folded, unfolded } = inferenceModel(compressed);
    expect(unfolded).toEqual([]);
    expect(inference.layers.some((l) => l.getClassName() === 'BatchNormalization')).toBe(false);
    const basis = inference.layers.filter((l): l is BasisConv2D => l instanceof BasisConv2D);
    expect(basis).toHaveLength(18);
    // Shrunk form kept, bias added; each block's first conv takes the relu after its BatchNorm.
    expect(basis.every((l) => l.form === 'shrunk' && l.useBias)).toBe(true);
    expect(basis.filter((l) => l.activation === 'relu').map((l) => l.name)).toEqual(
      [1, 2, 3].flatMap((s) => [1, 2, 3].map((b) => `stage${s}.block${b}.conv1`)),
    );
    expect(folded.filter((f) => f.className === 'BasisConv2D')).toHaveLength(18);
    expect(folded.every((f) => f.note === undefined)).toBe(true);
    expect(difference(inference, compressed, images)).toBeLessThan(1e-4);
    const loaded = await savedAndLoaded(inference);
    expect(difference(loaded, compressed, images)).toBeLessThan(1e-4);
    loaded.dispose();
    inference.dispose();
  });

  it('leaves the model untouched and leaks no tensors', () => {
    const weights = compressed.getWeights().map((w) => w.dataSync().slice());
    inferenceModel(compressed).model.dispose();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) inferenceModel(compressed).model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(compressed.getWeights().map((w) => w.dataSync())).toEqual(weights);
  });
});

describe('BasisConv2D.foldAffine', () => {
  /** input → BasisConv2D → BatchNorm (gamma as given) → relu. */
  function chain(args: { outputOrder?: number[]; form?: 'shrunk' | 'full'; gamma: number[] }): LayersModel {
    const image = input({ shape: [6, 6, 3], name: 'image' });
    const basis = new BasisConv2D({
      name: 'basis',
      filters: 5,
      basisSize: 2,
      kernelSize: 3,
      padding: 'same',
      useBias: false,
      form: args.form ?? 'shrunk',
      outputOrder: args.outputOrder ?? null,
      seed: 4,
    });
    const bn = layers.batchNormalization({ name: 'bn' });
    const relu = layers.activation({ name: 'relu', activation: 'relu' });
    const out = relu.apply(bn.apply(basis.apply(image))) as SymbolicTensor;
    const net = functionalModel({ inputs: image, outputs: out });
    randomizeBatchNorms(net, 5);
    const [, beta, mean, variance] = bn.getWeights();
    bn.setWeights([tf.tensor1d(args.gamma), beta!, mean!, variance!]);
    return net;
  }
  const x = () => tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 9);

  it('scales B and rescales A′ in output order, keeping the shrunk form', () => {
    const net = chain({ outputOrder: [2, 0, 3, 1, 4], gamma: [0.5, -1.2, 2, 0.7, 1.5] });
    const { model: inference, folded } = inferenceModel(net);
    const layer = inference.getLayer('basis') as BasisConv2D;
    expect([layer.form, layer.outputOrder, layer.activation]).toEqual(['shrunk', [2, 0, 3, 1, 4], 'relu']);
    expect(folded[0]!.note).toBeUndefined();
    const input = x();
    expect(difference(inference, net, input)).toBeLessThan(1e-5);
    tf.dispose(input);
    inference.dispose();
    net.dispose();
  });

  it('folds into the full form, and says so, when a basis output is scaled by 0', () => {
    // Output channel 1 is basis output 0 (order[1] = 0).
    const net = chain({ outputOrder: [2, 0, 3, 1, 4], gamma: [0.5, 0, 2, 0.7, 1.5] });
    const { model: inference, folded } = inferenceModel(net);
    const layer = inference.getLayer('basis') as BasisConv2D;
    expect([layer.form, layer.outputOrder]).toEqual(['full', null]);
    expect(folded[0]!.note).toMatch(/full form.*scale is 0/);
    const input = x();
    expect(difference(inference, net, input)).toBeLessThan(1e-5);
    tf.dispose(input);
    inference.dispose();
    net.dispose();
  });

  it('folds a full-form layer by scaling Aᵀ', () => {
    const net = chain({ form: 'full', gamma: [0.5, 0, 2, 0.7, -1.5] });
    const { model: inference } = inferenceModel(net);
    expect((inference.getLayer('basis') as BasisConv2D).form).toBe('full');
    const input = x();
    expect(difference(inference, net, input)).toBeLessThan(1e-5);
    tf.dispose(input);
    inference.dispose();
    net.dispose();
  });

  it('refuses an activation it cannot apply, and an affine after its own activation', () => {
    const used = (args: { activation?: 'relu' }) => {
      const basis = new BasisConv2D({ filters: 4, basisSize: 2, kernelSize: 1, ...args });
      tf.tidy(() => basis.apply(tf.zeros([1, 4, 4, 3])) as tf.Tensor);
      return basis;
    };
    const layer = used({});
    const affine = { scale: tf.ones([4]) as tf.Tensor1D, shift: tf.zeros([4]) as tf.Tensor1D };
    expect(layer.foldAffine({ ...affine, activation: 'tanh' })).toEqual({
      reason: 'it cannot apply tanh (only linear, relu, relu6, elu, sigmoid)',
    });
    const activated = used({ activation: 'relu' });
    expect(activated.foldAffine({ ...affine, activation: 'linear' })).toEqual({
      reason: 'it applies relu itself',
    });
    tf.dispose([affine.scale, affine.shift]);
    layer.dispose();
    activated.dispose();
  });
});

describe('BasisDense.foldAffine', () => {
  it('folds a BatchNorm and softmax after a BasisDense', () => {
    const features = input({ shape: [7], name: 'features' });
    const dense = new BasisDense({
      name: 'dense',
      units: 6,
      basisSize: 3,
      outputOrder: [5, 0, 3, 1, 4, 2],
      seed: 2,
    });
    const bn = layers.batchNormalization({ name: 'bn' });
    const softmax = layers.activation({ name: 'softmax', activation: 'softmax' });
    const net = functionalModel({
      inputs: features,
      outputs: softmax.apply(bn.apply(dense.apply(features))) as SymbolicTensor,
    });
    randomizeBatchNorms(net, 3);
    const { model: inference, folded } = inferenceModel(net);
    expect(folded.map((f) => [f.layer, f.batchNorm, f.activation])).toEqual([['dense', 'bn', 'softmax']]);
    expect((inference.getLayer('dense') as BasisDense).activation).toBe('softmax');
    const x = tf.randomNormal([4, 7], 0, 1, 'float32', 8);
    expect(difference(inference, net, x)).toBeLessThan(1e-5);
    tf.dispose(x);
    inference.dispose();
    net.dispose();
  });
});
