import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import {
  model as functionalModel,
  initializers,
  input,
  type LayersModel,
  layers,
  type SymbolicTensor,
  sequential,
} from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { inferenceModel } from './inference.js';
import { FoldableScale, PlainScale } from './test/custom-layers.js';
import { randomizeBatchNorms, relativeDifference, savedAndLoaded } from './testing.js';

beforeAll(async () => {
  await initEngine();
});

/** The model's outputs on `x`, always as a list. */
function outputsOf(model: LayersModel, x: tf.Tensor): tf.Tensor[] {
  const output = model.predict(x);
  return Array.isArray(output) ? output : [output];
}

/** The largest relative difference between the two models' outputs on `x`. */
function largestRelativeDifference(actual: LayersModel, expected: LayersModel, x: tf.Tensor): number {
  return tf.tidy(() => {
    const want = outputsOf(expected, x);
    return Math.max(...outputsOf(actual, x).map((got, i) => relativeDifference(got, want[i]!)));
  });
}

function weightsOf(model: LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

function classCounts(model: LayersModel): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const layer of model.layers) counts[layer.getClassName()] = (counts[layer.getClassName()] ?? 0) + 1;
  return counts;
}

describe('inferenceModel on ResNet-20 (residual adds)', () => {
  let resnet20: LayersModel;
  let x: tf.Tensor;
  beforeAll(() => {
    resnet20 = createCifarResNet({ arch: 'resnet20', shortcut: 'A', seed: 3 });
    randomizeBatchNorms(resnet20, 10);
    x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5);
  });

  it('folds all 19 BatchNorms, fuses the 10 relus that follow one, and predicts as the original', () => {
    const folded = inferenceModel(resnet20).model;
    const before = classCounts(resnet20);
    const after = classCounts(folded);
    expect(before.BatchNormalization).toBe(19);
    expect(after.BatchNormalization).toBeUndefined();
    expect(after.Conv2D).toBe(19);
    // stem.relu and every block's relu1 fuse; each relu2 follows an add and stays.
    expect(after.Activation).toBe((before.Activation ?? 0) - 10);
    const convs = folded.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => l.getConfig());
    expect(convs.every((c) => c.useBias === true)).toBe(true);
    expect(convs.filter((c) => c.activation === 'relu').map((c) => c.name)).toEqual([
      'stem.conv',
      ...[1, 2, 3].flatMap((s) => [1, 2, 3].map((b) => `stage${s}.block${b}.conv1`)),
    ]);
    expect(largestRelativeDifference(folded, resnet20, x)).toBeLessThan(1e-5);
    folded.dispose();
  });

  it('leaves the original untouched and leaks no tensors', () => {
    const weights = weightsOf(resnet20);
    const layerNames = resnet20.layers.map((l) => l.name);
    inferenceModel(resnet20).model.dispose();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) inferenceModel(resnet20).model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(resnet20.layers.map((l) => l.name)).toEqual(layerNames);
    expect(weightsOf(resnet20)).toEqual(weights);
  });
});

describe('inferenceModel leaves what it cannot fold', () => {
  const batchNorm = (name: string, seed: number, parts: { center?: boolean; scale?: boolean } = {}) =>
    layers.batchNormalization({
      name,
      epsilon: 1e-3,
      ...parts,
      gammaInitializer: initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed }),
      betaInitializer: initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + 1 }),
      movingMeanInitializer: initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + 2 }),
      movingVarianceInitializer: initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: seed + 3 }),
    });
  const conv = (name: string, seed: number, activation: 'linear' | 'relu' = 'linear') =>
    layers.conv2d({
      name,
      filters: 4,
      kernelSize: 3,
      padding: 'same',
      activation,
      kernelInitializer: initializers.glorotUniform({ seed }),
      biasInitializer: initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 1 }),
    });
  const on = (
    layer: { apply: (x: SymbolicTensor | SymbolicTensor[]) => unknown },
    x: SymbolicTensor | SymbolicTensor[],
  ) => layer.apply(x) as SymbolicTensor;

  /** One chain of each case, named after what should happen to it (two BatchNorms without gamma or beta). */
  function mixedModel(): LayersModel {
    const x = input({ shape: [6, 6, 3], name: 'image' });
    const folded = on(
      layers.activation({ name: 'fused.relu', activation: 'relu' }),
      on(batchNorm('fused.bn', 1, { scale: false }), on(conv('fused', 2), x)),
    );
    const activated = on(batchNorm('activated.bn', 3), on(conv('activated', 4, 'relu'), folded));
    const custom = on(batchNorm('custom.bn', 5), on(new PlainScale({ name: 'custom' }), activated));
    const shared = on(conv('shared', 6), custom);
    const sum = on(layers.add({ name: 'add' }), [
      on(batchNorm('shared.bn', 7), shared),
      on(conv('other', 8), shared),
    ]);
    const exposed = on(batchNorm('exposed.bn', 9, { center: false }), on(conv('exposed', 10), sum));
    const relu = on(layers.reLU({ name: 'exposed.relu' }), exposed);
    const head = on(
      layers.dense({ name: 'head', units: 3 }),
      on(layers.globalAveragePooling2d({ name: 'pool' }), relu),
    );
    return functionalModel({ inputs: x, outputs: [exposed, head], name: 'mixed' });
  }

  it('folds only a stock linear Conv2D used by nothing but the BatchNorm, fusing a relu only when nothing else sees the BatchNorm', () => {
    const original = mixedModel();
    const { model: folded, unfolded } = inferenceModel(original);
    expect(unfolded).toEqual([
      { batchNorm: 'activated.bn', reason: "'activated' (Conv2D) applies relu itself" },
      {
        batchNorm: 'custom.bn',
        reason:
          "its input comes from 'custom' (TestPlainScale), which has no foldAffine() (core's AffineFoldableLayer)",
      },
      { batchNorm: 'shared.bn', reason: "the output of 'shared' also feeds 'shared.bn', 'other'" },
    ]);
    const names = folded.layers.map((l) => l.name);
    for (const gone of ['fused.bn', 'fused.relu', 'exposed.bn']) expect(names).not.toContain(gone);
    for (const kept of ['activated.bn', 'custom', 'custom.bn', 'shared.bn', 'exposed.relu']) {
      expect(names).toContain(kept);
    }
    expect(folded.getLayer('fused').getConfig().activation).toBe('relu');
    // The BatchNorm's output is also a model output: folded into the conv, the relu kept apart.
    expect(folded.getLayer('exposed').getConfig().activation).toBe('linear');
    const x = tf.randomNormal([3, 6, 6, 3], 0, 1, 'float32', 11);
    expect(largestRelativeDifference(folded, original, x)).toBeLessThan(1e-5);
    tf.dispose(x);
    folded.dispose();
    original.dispose();
  });

  it('takes a Sequential model, and returns an equal copy when there is nothing to fold', () => {
    const model = sequential({
      layers: [
        layers.conv2d({ name: 'conv', inputShape: [6, 6, 3], filters: 2, kernelSize: 3, activation: 'relu' }),
        layers.flatten({ name: 'flatten' }),
        layers.dense({ name: 'head', units: 2 }),
      ],
    });
    const folded = inferenceModel(model).model;
    expect(folded.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Conv2D', 'Flatten', 'Dense']);
    const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 13);
    expect(largestRelativeDifference(folded, model, x)).toBeLessThan(1e-6);
    tf.dispose(x);
    folded.dispose();
    model.dispose();
  });
});

describe('inferenceModel on a MobileNet-style model (depthwise, separable, relu6, a Dense head)', () => {
  const on = (layer: { apply: (x: SymbolicTensor | SymbolicTensor[]) => unknown }, x: SymbolicTensor) =>
    layer.apply(x) as SymbolicTensor;
  const bn = (name: string) => layers.batchNormalization({ name });
  const relu6 = (name: string) => layers.reLU({ name, maxValue: 6 });

  /** Stem, an inverted residual block, a separable conv, pooling, a Dense → BatchNorm → softmax head. */
  function mobileNetStyle(): LayersModel {
    const image = input({ shape: [12, 12, 3], name: 'image' });
    const conv = (name: string, filters: number, kernelSize: number, seed: number) =>
      layers.conv2d({
        name,
        filters,
        kernelSize,
        padding: 'same',
        useBias: false,
        kernelInitializer: initializers.glorotUniform({ seed }),
      });
    let x = on(relu6('stem.relu'), on(bn('stem.bn'), on(conv('stem', 8, 3, 1), image)));
    let y = on(relu6('expand.relu'), on(bn('expand.bn'), on(conv('expand', 16, 1, 2), x)));
    const depthwise = layers.depthwiseConv2d({
      name: 'depthwise',
      kernelSize: 3,
      padding: 'same',
      depthMultiplier: 2,
      useBias: false,
      depthwiseInitializer: initializers.glorotUniform({ seed: 3 }),
    });
    y = on(relu6('depthwise.relu'), on(bn('depthwise.bn'), on(depthwise, y)));
    y = on(bn('project.bn'), on(conv('project', 8, 1, 4), y));
    x = layers.add({ name: 'add' }).apply([x, y]) as SymbolicTensor;
    const separable = layers.separableConv2d({
      name: 'separable',
      filters: 12,
      kernelSize: 3,
      padding: 'same',
      depthwiseInitializer: initializers.glorotUniform({ seed: 5 }),
      pointwiseInitializer: initializers.glorotUniform({ seed: 6 }),
    });
    x = on(
      layers.activation({ name: 'separable.relu', activation: 'relu' }),
      on(bn('separable.bn'), on(separable, x)),
    );
    x = on(layers.globalAveragePooling2d({ name: 'pool' }), x);
    x = on(
      bn('head.bn'),
      on(
        layers.dense({ name: 'head', units: 5, kernelInitializer: initializers.glorotUniform({ seed: 7 }) }),
        x,
      ),
    );
    x = on(layers.activation({ name: 'head.softmax', activation: 'softmax' }), x);
    const model = functionalModel({ inputs: image, outputs: x, name: 'mobilenet-style' });
    randomizeBatchNorms(model, 20);
    return model;
  }

  it('folds every BatchNorm and fuses every activation, predicting as the original, and saves and loads', async () => {
    const original = mobileNetStyle();
    const { model: inference, folded, unfolded } = inferenceModel(original);
    expect(unfolded).toEqual([]);
    expect(Object.keys(classCounts(inference)).sort()).toEqual(
      [
        'Add',
        'Conv2D',
        'Dense',
        'DepthwiseConv2D',
        'GlobalAveragePooling2D',
        'InputLayer',
        'SeparableConv2D',
      ].sort(),
    );
    expect(folded.map((f) => [f.layer, f.batchNorm, f.activation])).toEqual([
      ['stem', 'stem.bn', 'stem.relu'],
      ['expand', 'expand.bn', 'expand.relu'],
      ['depthwise', 'depthwise.bn', 'depthwise.relu'],
      ['project', 'project.bn', null],
      ['separable', 'separable.bn', 'separable.relu'],
      ['head', 'head.bn', 'head.softmax'],
    ]);
    expect(inference.getLayer('depthwise').getConfig().activation).toBe('relu6');
    expect(inference.getLayer('head').getConfig().activation).toBe('softmax');
    const x = tf.randomNormal([3, 12, 12, 3], 0, 1, 'float32', 21);
    expect(largestRelativeDifference(inference, original, x)).toBeLessThan(1e-4);
    const loaded = await savedAndLoaded(inference);
    expect(largestRelativeDifference(loaded, original, x)).toBeLessThan(1e-4);
    tf.dispose(x);
    for (const m of [loaded, inference, original]) m.dispose();
  });

  it('leaves the original untouched and leaks no tensors', () => {
    const original = mobileNetStyle();
    const weights = weightsOf(original);
    inferenceModel(original).model.dispose();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) inferenceModel(original).model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(weightsOf(original)).toEqual(weights);
    original.dispose();
  });
});

describe('inferenceModel and a custom layer implementing foldAffine', () => {
  const on = (layer: { apply: (x: SymbolicTensor) => unknown }, x: SymbolicTensor) =>
    layer.apply(x) as SymbolicTensor;
  const bn = (name: string) => layers.batchNormalization({ name });

  function customModel(): LayersModel {
    const image = input({ shape: [4, 4, 3], name: 'image' });
    let x = on(
      layers.activation({ name: 'a.relu', activation: 'relu' }),
      on(bn('a.bn'), on(new FoldableScale({ name: 'a' }), image)),
    );
    // The layer applies no tanh: the BatchNorm folds, the tanh stays.
    x = on(
      layers.activation({ name: 'b.tanh', activation: 'tanh' }),
      on(bn('b.bn'), on(new FoldableScale({ name: 'b' }), x)),
    );
    // It refuses any affine after its own relu.
    x = on(bn('c.bn'), on(new FoldableScale({ name: 'c', activation: 'relu' }), x));
    // No BatchNorm: the relu alone is fused.
    x = on(layers.reLU({ name: 'd.relu' }), on(new FoldableScale({ name: 'd' }), x));
    const model = functionalModel({ inputs: image, outputs: x, name: 'custom' });
    randomizeBatchNorms(model, 30);
    return model;
  }

  it('folds through the hook, says what it refused, and predicts as the original', () => {
    const original = customModel();
    const { model: inference, folded, unfolded } = inferenceModel(original);
    expect(folded.map((f) => [f.layer, f.batchNorm, f.activation])).toEqual([
      ['a', 'a.bn', 'a.relu'],
      ['b', 'b.bn', null],
      ['d', null, 'd.relu'],
    ]);
    expect(unfolded).toEqual([
      { batchNorm: 'c.bn', reason: "'c' (TestFoldableScale) does not absorb it: it applies relu itself" },
    ]);
    expect(inference.layers.map((l) => l.name)).toEqual(['image', 'a', 'b', 'b.tanh', 'c', 'c.bn', 'd']);
    const x = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 31);
    expect(largestRelativeDifference(inference, original, x)).toBeLessThan(1e-5);
    tf.dispose(x);
    inference.dispose();
    original.dispose();
  });
});
