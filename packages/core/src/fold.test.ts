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
import { foldBatchNorm } from './fold.js';
import { PlainScale } from './test/custom-layers.js';
import { relativeDifference } from './testing.js';

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

/** Sets every BatchNormalization's gamma, beta and moving statistics to seeded random values away from 1/0. */
function randomiseBatchNorms(model: LayersModel, seed: number): void {
  for (const [index, layer] of model.layers.entries()) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const values = tf.tidy(() =>
      layer.getWeights().map((w, i) => {
        const draw = tf.randomUniform(w.shape, 0.5, 1.5, 'float32', seed + 4 * index + i);
        // gamma and variance positive, beta and mean around 0
        return i % 2 === 0 ? draw : tf.sub(draw, 1);
      }),
    );
    layer.setWeights(values);
    tf.dispose(values);
  }
}

function weightsOf(model: LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync() as Float32Array);
}

function classCounts(model: LayersModel): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const layer of model.layers) counts[layer.getClassName()] = (counts[layer.getClassName()] ?? 0) + 1;
  return counts;
}

describe('foldBatchNorm on ResNet-20 (residual adds)', () => {
  let resnet20: LayersModel;
  let x: tf.Tensor;
  beforeAll(() => {
    resnet20 = createCifarResNet({ arch: 'resnet20', shortcut: 'A', seed: 3 });
    randomiseBatchNorms(resnet20, 10);
    x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5);
  });

  it('folds all 19 BatchNorms, fuses the 10 relus that follow one, and predicts as the original', () => {
    const folded = foldBatchNorm(resnet20);
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
    foldBatchNorm(resnet20).dispose();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) foldBatchNorm(resnet20).dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(resnet20.layers.map((l) => l.name)).toEqual(layerNames);
    expect(weightsOf(resnet20)).toEqual(weights);
  });
});

describe('foldBatchNorm leaves what it cannot fold', () => {
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
    const folded = foldBatchNorm(original);
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
    const folded = foldBatchNorm(model);
    expect(folded.layers.map((l) => l.getClassName())).toEqual(['InputLayer', 'Conv2D', 'Flatten', 'Dense']);
    const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 13);
    expect(largestRelativeDifference(folded, model, x)).toBeLessThan(1e-6);
    tf.dispose(x);
    folded.dispose();
    model.dispose();
  });
});
