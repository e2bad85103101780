// Regularisers, constraints and `trainable` of a rewritten layer carry over to its replacements, and the
// report says, per layer, what could not be carried.
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import {
  constraints,
  initializers,
  type LayersModel,
  layers,
  regularizers,
  sequential,
} from '@tensorflow/tfjs-layers';
import { beforeAll, expect, it } from 'vitest';
import { z } from 'zod';
import { convCost } from './cost.js';
import type { DecompositionStrategy, Layer } from './strategy.js';
import { applyStrategy } from './surgery.js';
import { identityStrategy } from './test/identity-strategy.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

/**
 * Rewrites a Conv2D or Dense as two layers: the same layer without bias, then a 1×1 (or square) identity with
 * the bias, so the output is unchanged.
 */
const twoStep: DecompositionStrategy<{ ratio: number }> = {
  name: 'two-step',
  version: '1.0.0',
  description: 'test strategy',
  optionsSchema: z.object({ ratio: z.number().default(1) }),
  supports: (target) =>
    target.conv === null && target.dense === null ? { ok: false, reason: 'not a conv' } : { ok: true },
  decompose(target) {
    const name = target.name;
    if (target.conv !== null) {
      const { kernelSize, strides, padding, outChannels } = target.conv;
      const first = layers.conv2d({
        name: `${name}.a`,
        filters: outChannels,
        kernelSize: [...kernelSize],
        strides: [...strides],
        padding,
        useBias: false,
      });
      const second = layers.conv2d({ name: `${name}.b`, filters: outChannels, kernelSize: 1, useBias: true });
      const eye = tf.tidy(() => tf.reshape(tf.eye(outChannels), [1, 1, outChannels, outChannels]));
      return { layers: [first, second], weights: [[target.kernel!.clone()], [eye, target.bias!.clone()]] };
    }
    const units = target.dense!.units;
    const first = layers.dense({ name: `${name}.a`, units, useBias: false });
    const second = layers.dense({ name: `${name}.b`, units, useBias: true });
    return {
      layers: [first, second],
      weights: [[target.denseKernel!.clone()], [tf.eye(units), target.bias!.clone()]],
    };
  },
  cost: (shape) => convCost(shape),
};

const slot = (layer: Layer, name: string) =>
  (layer as unknown as Record<string, { getClassName(): string } | null>)[name]?.getClassName() ?? null;

/** conv (L1L2 kernel, L2 bias, maxNorm kernel, nonNeg bias) → flatten → dense (same, frozen). */
function regularised(): LayersModel {
  const common = {
    kernelRegularizer: regularizers.l1l2({ l1: 1e-3, l2: 1e-2 }),
    biasRegularizer: regularizers.l2({ l2: 1e-2 }),
    kernelConstraint: constraints.maxNorm({ maxValue: 2 }),
    biasConstraint: constraints.nonNeg(),
    biasInitializer: initializers.constant({ value: 0.1 }),
  };
  return sequential({
    layers: [
      layers.conv2d({ name: 'conv', inputShape: [6, 6, 2], filters: 4, kernelSize: 3, ...common }),
      layers.flatten({ name: 'flatten' }),
      layers.dense({ name: 'dense', units: 3, trainable: false, ...common }),
    ],
  });
}

it('puts the regularisers on the replacements, the bias ones on the last, and reports the dropped kernel constraint', () => {
  const original = regularised();
  const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 3);
  const once = () => {
    const { model, report } = applyStrategy(original, twoStep, { layers: ['conv', 'dense'] });
    for (const name of ['conv', 'dense']) {
      const [a, b] = [model.getLayer(`${name}.a`), model.getLayer(`${name}.b`)];
      expect([slot(a, 'kernelRegularizer'), slot(b, 'kernelRegularizer')]).toEqual(['L1L2', 'L1L2']);
      expect([slot(b, 'biasRegularizer'), slot(b, 'biasConstraint')]).toEqual(['L1L2', 'NonNeg']);
      expect([slot(a, 'kernelConstraint'), slot(b, 'kernelConstraint')]).toEqual([null, null]);
    }
    // The regularisers are the model's losses: two kernels and one bias per rewritten layer.
    expect(model.layers.map((l) => l.losses.length)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(model.getLayer('dense.a').trainable).toBe(false);
    expect(model.getLayer('dense.b').trainable).toBe(false);
    expect(model.getLayer('conv.a').trainable).toBe(true);
    expect(report.map((r) => r.notes)).toEqual([
      [
        expect.stringMatching(
          /^its kernel constraint MaxNorm was not carried over: it bounds the original kernel, which 2 layers now factor/,
        ),
      ],
      [expect.stringMatching(/^its kernel constraint MaxNorm was not carried over/)],
    ]);
    const [got, want] = [model.predict(x) as tf.Tensor, original.predict(x) as tf.Tensor];
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0])).toBeLessThan(1e-5);
    tf.dispose([got, want]);
    model.dispose();
  };
  once();
  const tensors = tf.memory().numTensors;
  once();
  expect(tf.memory().numTensors).toBe(tensors);
  x.dispose();
  original.dispose();
});

it('carries every regulariser and constraint to a single replacement, with nothing to report', () => {
  const original = regularised();
  const { model, report } = applyStrategy(original, identityStrategy, { layers: 'conv' });
  const copy = model.getLayer('conv.copy');
  expect(
    ['kernelRegularizer', 'biasRegularizer', 'kernelConstraint', 'biasConstraint'].map((s) => slot(copy, s)),
  ).toEqual(['L1L2', 'L1L2', 'MaxNorm', 'NonNeg']);
  expect(report[0]!.notes).toBeUndefined();
  model.dispose();
  original.dispose();
});

it('says when the last replacement has no bias for the bias regulariser', () => {
  const original = regularised();
  const noBias: DecompositionStrategy<{ ratio: number }> = {
    ...twoStep,
    decompose: (target, options, context) => {
      const d = twoStep.decompose(target, options, context);
      const name = target.name;
      const units = target.dense!.units;
      tf.dispose(d.weights!.flat());
      return {
        layers: [
          layers.dense({ name: `${name}.a`, units, useBias: true }),
          layers.dense({ name: `${name}.b`, units, useBias: false }),
        ],
      };
    },
  };
  const { model, report } = applyStrategy(original, noBias, { layers: 'dense' });
  expect(report[0]!.notes).toEqual([
    'its bias regulariser L1L2 was not carried over: the last replacement layer (Dense) has no bias',
    'its bias constraint NonNeg was not carried over: the last replacement layer (Dense) has no bias',
    expect.stringMatching(/^its kernel constraint MaxNorm/),
  ]);
  model.dispose();
  original.dispose();
});
