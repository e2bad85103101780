import { applyStrategy, inferenceModel } from '@decompose/core';
import { randomizeBatchNorms, relativeDifference } from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { svdStrategy } from './strategy.js';

beforeAll(async () => {
  await initEngine();
});

it.each([
  ['weight', '_svd_1x1'],
  ['spatial', '_svd_1xk'],
] as const)(
  'folds each BatchNorm of an svd 0.5 ResNet-20 (%s) into the second factor of the pair before it',
  (mode, second) => {
    const dense = createCifarResNet({ arch: 'resnet20', seed: 4 });
    randomizeBatchNorms(dense, 10);
    const { model: compressed } = applyStrategy(dense, svdStrategy, {
      layers: '**',
      options: { mode, ratio: 0.5 },
    });
    const { model: inference, folded, unfolded } = inferenceModel(compressed);
    expect(unfolded).toEqual([]);
    expect(folded).toHaveLength(19);
    expect(folded.every((f) => f.layer.endsWith(second) && f.className === 'Conv2D')).toBe(true);
    expect(inference.layers.some((l) => l.getClassName() === 'BatchNormalization')).toBe(false);
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 1);
    const [want, got] = [compressed, inference].map((m) => m.predict(x) as tf.Tensor) as [
      tf.Tensor,
      tf.Tensor,
    ];
    expect(relativeDifference(got, want)).toBeLessThan(1e-4);
    const tensors = tf.memory().numTensors;
    inferenceModel(compressed).model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    tf.dispose([x, want, got]);
    for (const m of [inference, compressed, dense]) m.dispose();
  },
);
