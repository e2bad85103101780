import { applyStrategy, costTable, type Decomposition, targetShape } from '@decompose/core';
import { type DenseSpec, decomposedModel, denseTarget, relativeDifference } from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { model as functionalModel, input, layers } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { SvdTargetError } from './errors.js';
import { type SvdOptionsInput, svdOptionsSchema } from './options.js';
import { svdStrategy } from './strategy.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const options = (raw: SvdOptionsInput) => svdOptionsSchema.parse(raw);

/** Relative difference between a Dense's output and its decomposition's on the same random input. */
function outputDifference(spec: DenseSpec, raw: SvdOptionsInput, init: 'trained' | 'scratch' = 'trained') {
  const { model, target } = denseTarget(spec);
  const decomposition: Decomposition = svdStrategy.decompose(target, options(raw), { init, seed: 7 });
  const rewritten = decomposedModel(spec.inputShape, decomposition);
  tf.dispose((decomposition.weights ?? []).flat());
  const x = tf.randomNormal([4, ...spec.inputShape], 0, 1, 'float32', 3);
  const expected = model.predict(x) as tf.Tensor;
  const actual = rewritten.predict(x) as tf.Tensor;
  const difference = relativeDifference(actual, expected);
  const classes = rewritten.layers.slice(1).map((l) => l.getClassName());
  tf.dispose([x, expected, actual]);
  model.dispose();
  rewritten.dispose();
  return { difference, decomposition, classes };
}

describe('SVD of a Dense layer', () => {
  it.each<[string, DenseSpec, number]>([
    ['24 → 10, bias, relu', { inputShape: [24], units: 10, activation: 'relu' }, 10],
    ['at 5 positions, 12 → 16, no bias', { inputShape: [5, 12], units: 16, useBias: false }, 12],
    ['32 → 8, softmax', { inputShape: [32], units: 8, activation: 'softmax' }, 8],
  ])('full rank reproduces the output (%s) with two stock Dense layers', (_, spec, rank) => {
    const { difference, decomposition, classes } = outputDifference(spec, { rank });
    expect(difference).toBeLessThan(1e-5);
    expect(classes).toEqual(['Dense', 'Dense']);
    expect(decomposition.layers.map((l) => l.name)).toEqual(['dense_svd_in', 'dense_svd_out']);
    expect(decomposition.info).toMatchObject({ mode: 'weight', rank });
    expect(decomposition.info?.relativeError).toBeLessThan(1e-6);
  });

  it('a ratio keeps the largest rank within the parameter budget, costed exactly', () => {
    const { model, target } = denseTarget({ inputShape: [64], units: 32 });
    // Dense: 64·32 + 32 = 2080 params; a quarter is 520; each rank costs 64 + 32, so rank 5: 5·96 + 32 = 512.
    const { model: rewritten, report } = applyStrategy(model, svdStrategy, { options: { ratio: 0.25 } });
    expect(report).toMatchObject([
      {
        layer: 'dense',
        className: 'Dense',
        replacements: ['dense_svd_in', 'dense_svd_out'],
        info: { rank: 5, params: 512 },
        before: { params: 2080, forwardMacs: 2048 },
        after: { params: 512, forwardMacs: 5 * 96, backwardMacs: 2 * 5 * 96 },
      },
    ]);
    const rows = costTable(rewritten).rows.filter((r) => r.name.startsWith('dense_svd'));
    expect(rows.reduce((n, r) => n + r.params, 0)).toBe(512);
    expect(rows.reduce((n, r) => n + r.forwardMacs, 0)).toBe(5 * 96);
    expect(svdStrategy.cost(targetShape(target)!, options({ ratio: 0.25 }))).toEqual(report[0]!.after);
    model.dispose();
    rewritten.dispose();
  });

  it('fits the trained weights (truncated SVD) far better than a fresh initialisation; energy picks the rank', () => {
    const spec: DenseSpec = { inputShape: [48], units: 24 };
    const fitted = outputDifference(spec, { rank: 12 });
    const scratch = outputDifference(spec, { rank: 12 }, 'scratch');
    expect(scratch.decomposition.weights).toBeUndefined();
    expect(fitted.difference).toBeLessThan(0.8);
    expect(fitted.difference).toBeLessThan(scratch.difference / 2);
    const energy = outputDifference(spec, { energy: 0.9 });
    expect(energy.decomposition.info?.rank).toBeGreaterThan(1);
    expect(energy.decomposition.info?.rank).toBeLessThan(24);
    expect(energy.decomposition.cost?.params).toBe(Number(energy.decomposition.info?.rank) * 72 + 24);
  });

  it('refuses spatial mode and ranks above min(C_in, units), with the reason', () => {
    const { model, target } = denseTarget({ inputShape: [16], units: 8 });
    expect(svdStrategy.supports(target, options({ mode: 'spatial', ratio: 0.5 }))).toEqual({
      ok: false,
      reason:
        "spatial SVD splits a k_h×k_w kernel, and a Dense layer has no spatial kernel; use mode 'weight'",
    });
    const tooHigh = svdStrategy.supports(target, options({ rank: 9 }));
    expect(tooHigh.ok ? '' : tooHigh.reason).toMatch(/rank 9 exceeds the largest weight SVD rank 8/);
    expect(() =>
      svdStrategy.decompose(target, options({ mode: 'spatial', rank: 2 }), { init: 'trained', seed: 0 }),
    ).toThrow(SvdTargetError);
    model.dispose();
  });

  it('rewrites convolutions and the Dense head of a model by default, and skips a depthwise convolution with the reason', () => {
    const x = input({ shape: [8, 8, 3] });
    let h = layers.conv2d({ name: 'conv', filters: 8, kernelSize: 3, padding: 'same' }).apply(x);
    h = layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, padding: 'same' }).apply(h);
    h = layers.globalAveragePooling2d({}).apply(h);
    const y = layers.dense({ name: 'head', units: 10 }).apply(h) as typeof x;
    const model = functionalModel({ inputs: x, outputs: y });
    const { model: rewritten, report, skipped } = applyStrategy(model, svdStrategy, { options: { rank: 4 } });
    expect(report.map((r) => r.layer)).toEqual(['conv', 'head']);
    expect(skipped).toEqual([{ layer: 'dw', reason: expect.stringMatching(/^depthwise convolution: /) }]);
    rewritten.dispose();
    model.dispose();
  });

  it('leaks no tensors across repeated surgeries', () => {
    const { model } = denseTarget({ inputShape: [20], units: 12 });
    const run = () => applyStrategy(model, svdStrategy, { options: { ratio: 0.5 } }).model.dispose();
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
