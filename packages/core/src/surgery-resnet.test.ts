import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyStrategy } from './surgery.js';
import { identityStrategy } from './test/identity-strategy.js';

beforeAll(async () => {
  await initEngine();
});

function maxAbsDiff(a: LayersModel, b: LayersModel, x: tf.Tensor): number {
  return tf.tidy(
    () =>
      tf
        .sub(a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor)
        .abs()
        .max()
        .dataSync()[0]!,
  );
}

describe('surgery on ResNet-20 (option A shortcuts)', () => {
  let resnet20: LayersModel;
  let x: tf.Tensor;
  beforeAll(() => {
    resnet20 = createCifarResNet({ arch: 'resnet20', shortcut: 'A', seed: 3 });
    x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5);
  });

  it('rewrites every convolution of a stage by glob and computes the same function', () => {
    const { model, report } = applyStrategy(resnet20, identityStrategy, { layers: 'stage2.*.conv*' });
    expect(report.map((r) => r.layer)).toEqual(
      [1, 2, 3].flatMap((b) => [`stage2.block${b}.conv1`, `stage2.block${b}.conv2`]),
    );
    expect(report[0]?.before).toEqual({
      params: 4608,
      forwardMacs: 4608 * 256,
      backwardMacs: 2 * 4608 * 256,
    });
    expect(maxAbsDiff(model, resnet20, x)).toBeLessThanOrEqual(1e-5);
    model.dispose();
  });

  it('rewrites all 19 convolutions, leaving the original model and the tensor count as they were', () => {
    const weights = resnet20.getWeights().map((w) => w.dataSync().slice());
    const surgery = () => applyStrategy(resnet20, identityStrategy, { layers: (t) => t.conv !== null });
    const first = surgery();
    expect(first.report).toHaveLength(19);
    expect(maxAbsDiff(first.model, resnet20, x)).toBeLessThanOrEqual(1e-5);
    first.model.dispose();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) surgery().model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(resnet20.getWeights().map((w) => w.dataSync())).toEqual(weights);
  });
});

it('surgery on ResNet-18 (option B shortcuts) computes the same function', () => {
  const resnet18 = createCifarResNet({ arch: 'resnet18', shortcut: 'B' });
  const x = tf.randomNormal([1, 32, 32, 3], 0, 1, 'float32', 7);
  const { model, report } = applyStrategy(resnet18, identityStrategy, {
    layers: ['stage2.*.conv1', 'stage4.block1.conv2'],
  });
  expect(report.map((r) => r.layer)).toEqual([
    'stage2.block1.conv1',
    'stage2.block2.conv1',
    'stage4.block1.conv2',
  ]);
  expect(maxAbsDiff(model, resnet18, x)).toBeLessThanOrEqual(1e-5);
  model.dispose();
  resnet18.dispose();
  x.dispose();
});
