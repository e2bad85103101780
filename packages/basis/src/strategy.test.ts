import type { TargetLayer } from '@decompose/core';
import { sameConvShape } from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { layers } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BasisConv2D } from './basis-conv2d.js';
import { factoredPays } from './cost.js';
import { fitBasis } from './fit.js';
import { basisOptionsSchema, basisSize } from './options.js';
import { basisStrategy } from './strategy.js';
import { randomConv, relativeDifference } from './test-helpers.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const options = (input: unknown) => basisOptionsSchema.parse(input);

describe('basis options', () => {
  it('fills defaults and derives m from ratio or m', () => {
    expect(options({})).toEqual({ form: 'shrunk', allowFullRank: false });
    expect(basisSize(64, options({}))).toBe(32);
    expect(basisSize(16, options({ ratio: 0.25 }))).toBe(4);
    expect(basisSize(3, options({ ratio: 0.01 }))).toBe(1);
    expect(basisSize(64, options({ m: 10 }))).toBe(10);
  });

  it('rejects invalid options with messages naming the problem', () => {
    const message = (input: unknown) => basisOptionsSchema.safeParse(input).error?.issues[0]?.message;
    expect(message({ ratio: 1.5 })).toMatch(/ratio must be ≤ 1/);
    expect(message({ ratio: 0 })).toMatch(/ratio must be > 0/);
    expect(message({ m: 0 })).toMatch(/m must be ≥ 1/);
    expect(message({ m: 2.5 })).toMatch(/m must be an integer/);
    expect(message({ ratio: 0.5, m: 4 })).toMatch(/either ratio or m/);
    expect(message({ form: 'tucker' })).toBeDefined();
    expect(message({ rank: 3 })).toBeDefined();
  });
});

describe('basisStrategy.supports', () => {
  it('accepts a plain Conv2D', () => {
    const { target } = randomConv({ inChannels: 4, filters: 8 });
    expect(basisStrategy.supports(target, options({ ratio: 0.5 }))).toEqual({ ok: true });
  });

  it('rejects depthwise convolutions, m ≥ C_out and unsupported activations, with reasons', () => {
    const { target } = randomConv({ inChannels: 4, filters: 8 });
    const depthwise = layers.depthwiseConv2d({ kernelSize: 3 });
    const rejects = (t: TargetLayer, o: unknown) => {
      const support = basisStrategy.supports(t, options(o));
      return support.ok ? '' : support.reason;
    };
    expect(rejects({ ...target, className: 'DepthwiseConv2D', layer: depthwise }, {})).toMatch(/depthwise/);
    expect(rejects({ ...target, className: 'Dense', conv: null, kernel: null }, {})).toMatch(/Dense/);
    expect(rejects(target, { m: 8 })).toMatch(/saves nothing/);
    expect(rejects(target, { m: 9, allowFullRank: true })).toMatch(/exceeds/);
    expect(rejects({ ...target, activation: 'tanh' }, {})).toMatch(/tanh/);
    const pointwise = randomConv({ inChannels: 4, filters: 8, kernelSize: 1 }).target;
    expect(rejects(pointwise, { ratio: 0.75 })).toMatch(/not fewer than the dense 32/);
    expect(basisStrategy.supports(pointwise, options({ ratio: 0.25 }))).toEqual({ ok: true });
    expect(basisStrategy.supports(target, options({ m: 8, allowFullRank: true }))).toEqual({ ok: true });
  });
});

describe('basisStrategy.cost', () => {
  const shape = sameConvShape(16, 32, 3, 2, 32, true);

  it('counts m·C_in·k²·HW + (C_out − m)·m·HW forward and twice that backward', () => {
    const cost = basisStrategy.cost(shape, options({ ratio: 0.25 }));
    const m = 8;
    const forward = m * 16 * 9 * 256 + (32 - m) * m * 256;
    expect(cost).toEqual({
      params: m * 16 * 9 + (32 - m) * m + 32,
      forwardMacs: forward,
      backwardMacs: 2 * forward,
    });
  });

  it('counts C_out·m combinations for the full form', () => {
    const cost = basisStrategy.cost(shape, options({ m: 8, form: 'full' }));
    expect(cost.forwardMacs).toBe(8 * 16 * 9 * 256 + 32 * 8 * 256);
  });
});

describe('factoredPays', () => {
  it('prefers conv(x, B) + the 1×1 step only where it takes fewer multiply-adds than folding W = A·B', () => {
    expect(factoredPays(9, 64, 64, 48)).toBe(true); // 48·(576 + 64) ≤ 64·576 per pixel
    expect(factoredPays(1, 256, 512, 384)).toBe(false); // a 1×1 at ratio 0.75 saves nothing
    expect(factoredPays(9, 3, 16, 12)).toBe(false); // 12·(27 + 16) > 16·27 per pixel …
    expect(factoredPays(9, 3, 16, 12, 4)).toBe(true); // … but folding costs 12·27·16 once per call
  });
});

describe('fitBasis', () => {
  it('finds an exact basis of a rank-2 filter set and copes with m above the rank', () => {
    // Columns are filters (tfjs layout, D = 3): f2 = 2·f0, f3 = f0 + f1.
    const f = [
      [1, 0, 2],
      [0, 1, 1],
      [2, 0, 4],
      [1, 1, 3],
    ];
    const kernel = [0, 1, 2].flatMap((d) => f.map((filter) => filter[d]!));
    const exact = fitBasis(kernel, 4, 2);
    expect(exact.relativeError).toBeLessThan(1e-12);
    expect(exact.basisRows).not.toEqual([0, 2]);
    const over = fitBasis(kernel, 4, 3);
    expect(over.relativeError).toBeLessThan(1e-9);
    expect(Array.from(over.coefficients).every(Number.isFinite)).toBe(true);
  });
});

describe('basisStrategy.decompose', () => {
  it('fits a trained layer and reports ‖W − A·B‖/‖W‖, which falls as m grows', () => {
    const { target } = randomConv({ inChannels: 3, filters: 12, seed: 11 });
    let previous = Number.POSITIVE_INFINITY;
    for (const m of [3, 6, 9]) {
      const {
        layers: replaced,
        weights,
        info,
      } = basisStrategy.decompose(target, options({ m }), {
        init: 'trained',
        seed: 0,
      });
      const layer = replaced[0] as BasisConv2D;
      layer.build([null, 8, 8, 3]);
      layer.setWeights(weights![0]!);
      const dense = layer.toDense();
      const error = info!.relativeError as number;
      expect(error).toBeCloseTo(relativeDifference(dense.weights[0]!, target.kernel!), 5);
      expect(error).toBeLessThan(previous);
      previous = error;
      // The rewrite keeps the bias and the original channel order: outputs match the fitted dense conv.
      expect(relativeDifference(dense.weights[1]!, target.bias!)).toBe(0);
    }
  });

  it('builds seeded layers from scratch whose outputs have the variance of a He-initialised conv', () => {
    const { target } = randomConv({ inChannels: 16, filters: 64, size: 12 });
    const make = () => {
      const layer = basisStrategy.decompose(target, options({ ratio: 0.25 }), { init: 'scratch', seed: 42 })
        .layers[0] as BasisConv2D;
      layer.build([null, 12, 12, 16]);
      return layer;
    };
    const [a, b] = [make(), make()];
    expect(relativeDifference(a.getWeights()[1]!, b.getWeights()[1]!)).toBe(0);
    const x = tf.randomNormal<tf.Rank.R4>([4, 12, 12, 16], 0, 1, 'float32', 5);
    const variance = (t: tf.Tensor) => tf.moments(t).variance.dataSync()[0]!;
    const dense = tf.conv2d(x, target.kernel!, 1, 'same');
    const ratio = variance(a.apply(x) as tf.Tensor) / variance(dense);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });
});
