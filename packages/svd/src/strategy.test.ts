import { readFileSync } from 'node:fs';
import type { Decomposition } from '@decompose/core';
import {
  type ConvSpec,
  convTarget,
  decomposedModel,
  heScaleRatio,
  relativeDifference,
  sameConvShape,
} from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { Matrix, QrDecomposition } from 'ml-matrix';
import { beforeAll, describe, expect, it } from 'vitest';
import { SvdRankError, SvdTargetError } from './errors.js';
import { type SvdMode, type SvdOptionsInput, svdOptionsSchema } from './options.js';
import { maxRank } from './rank.js';
import { SVD_VERSION, svdStrategy } from './strategy.js';

beforeAll(async () => {
  await initEngine();
});

const trained = { init: 'trained', seed: 7 } as const;
const options = (input: SvdOptionsInput) => svdOptionsSchema.parse(input);

function disposeDecomposition(decomposition: Decomposition): void {
  tf.dispose((decomposition.weights ?? []).flat());
}

/** Relative output difference between the original convolution and its full-rank decomposition. */
function fullRankDifference(spec: ConvSpec, mode: SvdMode): { difference: number; shapes: number[][] } {
  const { model, target } = convTarget(spec);
  const rank = maxRank(target.conv!, mode);
  const decomposition = svdStrategy.decompose(target, options({ mode, rank }), trained);
  const rewritten = decomposedModel(spec.inputShape, decomposition);
  disposeDecomposition(decomposition);
  const x = tf.randomNormal([2, ...spec.inputShape], 0, 1, 'float32', 3);
  const expected = model.predict(x) as tf.Tensor;
  const actual = rewritten.predict(x) as tf.Tensor;
  const result = { difference: relativeDifference(actual, expected), shapes: [actual.shape, expected.shape] };
  tf.dispose([x, expected, actual]);
  model.dispose();
  rewritten.dispose();
  return result;
}

describe('full rank reproduces the original convolution', () => {
  const specs: [string, ConvSpec][] = [
    ['3×3 same, bias, relu', { inputShape: [8, 8, 6], filters: 10, kernelSize: [3, 3], activation: 'relu' }],
    [
      '3×3 stride 2 valid',
      { inputShape: [9, 9, 5], filters: 7, kernelSize: [3, 3], strides: [2, 2], padding: 'valid' },
    ],
    [
      '5×3 stride (2, 1) same, no bias',
      { inputShape: [11, 7, 4], filters: 6, kernelSize: [5, 3], strides: [2, 1], useBias: false },
    ],
    ['3×3 dilation 2 same', { inputShape: [10, 10, 3], filters: 8, kernelSize: [3, 3], dilation: [2, 2] }],
    ['1×1', { inputShape: [5, 5, 12], filters: 9, kernelSize: [1, 1] }],
  ];
  it.each(specs)('weight mode, %s', (_, spec) => {
    const { difference, shapes } = fullRankDifference(spec, 'weight');
    expect(shapes[0]).toEqual(shapes[1]);
    expect(difference).toBeLessThanOrEqual(1e-4);
  });

  const spatialSpecs: [string, ConvSpec][] = [
    ['stride 1 same', { inputShape: [8, 8, 6], filters: 10, kernelSize: [3, 3], activation: 'relu' }],
    ['stride 1 valid', { inputShape: [8, 7, 6], filters: 10, kernelSize: [3, 3], padding: 'valid' }],
    ['stride 2 same, odd input', { inputShape: [9, 11, 5], filters: 7, kernelSize: [3, 3], strides: [2, 2] }],
    [
      'stride 2 valid, odd input',
      { inputShape: [9, 11, 5], filters: 7, kernelSize: [3, 3], strides: [2, 2], padding: 'valid' },
    ],
    [
      'stride 2 same, even input, 5×3',
      { inputShape: [12, 10, 4], filters: 6, kernelSize: [5, 3], strides: [2, 2], useBias: false },
    ],
    [
      'stride (1, 2) valid, 2×4',
      { inputShape: [7, 12, 3], filters: 5, kernelSize: [2, 4], strides: [1, 2], padding: 'valid' },
    ],
    ['dilation 2 same', { inputShape: [10, 10, 3], filters: 8, kernelSize: [3, 3], dilation: [2, 2] }],
    [
      'stride 2 same, even 2×4 kernel',
      { inputShape: [7, 12, 3], filters: 5, kernelSize: [2, 4], strides: [2, 2] },
    ],
  ];
  it.each(spatialSpecs)('spatial mode, %s: same output shape and values', (_, spec) => {
    const { difference, shapes } = fullRankDifference(spec, 'spatial');
    expect(shapes[0]).toEqual(shapes[1]);
    expect(difference).toBeLessThanOrEqual(1e-4);
  });
});

/**
 * A kernel whose mode matrix (weight: (k_h·k_w·C_in) × C_out; spatial: (k_h·C_in) × (k_w·C_out)) has exactly the
 * singular values `sigmas`, built from random orthonormal bases.
 */
function kernelWithSpectrum(mode: SvdMode, spec: ConvSpec, sigmas: number[]): tf.Tensor4D {
  const [kh, kw] = spec.kernelSize;
  const cin = spec.inputShape[2];
  const cout = spec.filters;
  const [rows, cols] = mode === 'weight' ? [kh * kw * cin, cout] : [kh * cin, kw * cout];
  const orthonormal = (n: number, seed: number) =>
    new QrDecomposition(Matrix.rand(n, n, { random: seeded(seed) })).orthogonalMatrix.subMatrix(
      0,
      n - 1,
      0,
      sigmas.length - 1,
    );
  const matrix = orthonormal(rows, 11).mmul(Matrix.diag(sigmas)).mmul(orthonormal(cols, 12).transpose());
  const kernel = new Float32Array(kh * kw * cin * cout);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let c = 0; c < cin; c++) {
        for (let o = 0; o < cout; o++) {
          kernel[((i * kw + j) * cin + c) * cout + o] =
            mode === 'weight' ? matrix.get((i * kw + j) * cin + c, o) : matrix.get(i * cin + c, j * cout + o);
        }
      }
    }
  }
  return tf.tensor4d(kernel, [kh, kw, cin, cout]);
}

function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

/** The dense kernel the two factor kernels compose to, in tfjs layout. */
function composedKernel(mode: SvdMode, first: tf.Tensor, second: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw, cin, rank] = first.shape as number[];
    const cout = second.shape[3]!;
    if (mode === 'weight') {
      return tf
        .matMul(first.reshape([-1, rank!]), second.reshape([rank!, cout]))
        .reshape([kh!, kw!, cin!, cout]);
    }
    const kw2 = second.shape[1]!;
    const product = tf.matMul(
      first.reshape([kh! * cin!, rank!]),
      second
        .reshape([kw2, rank!, cout])
        .transpose([1, 0, 2])
        .reshape([rank!, kw2 * cout]),
    );
    return product.reshape([kh!, cin!, kw2, cout]).transpose([0, 2, 1, 3]);
  });
}

describe('truncation', () => {
  const spec: ConvSpec = { inputShape: [8, 8, 4], filters: 6, kernelSize: [3, 3] };
  const sigmas = [5, 4, 3, 2, 1, 0.5];
  it.each(['weight', 'spatial'] as const)('%s mode: ‖W − W_r‖_F = √(Σ discarded σ²)', (mode) => {
    const { model, target } = convTarget(spec);
    const kernel = kernelWithSpectrum(mode, spec, sigmas);
    for (const rank of [1, 3, 5]) {
      const decomposition = svdStrategy.decompose({ ...target, kernel }, options({ mode, rank }), trained);
      const [first, second] = (decomposition.weights ?? []).map((weights) => weights[0]);
      const approximation = composedKernel(mode, first!, second!);
      const error = tf.tidy(() => tf.norm(tf.sub(kernel, approximation)).dataSync()[0]!);
      const discarded = Math.hypot(...sigmas.slice(rank));
      expect(error).toBeCloseTo(discarded, 4);
      expect(decomposition.info?.relativeError).toBeCloseTo(discarded / Math.hypot(...sigmas), 6);
      approximation.dispose();
      disposeDecomposition(decomposition);
    }
    kernel.dispose();
    model.dispose();
  });

  it('energy picks the smallest rank that keeps the fraction of Σσ²', () => {
    const { model, target } = convTarget(spec);
    const kernel = kernelWithSpectrum('weight', spec, [4, 3, 2, 1]);
    // σ² = 16, 9, 4, 1 of 30: rank 1 keeps 53 %, rank 2 83 %, rank 3 97 %.
    const rankFor = (energy: number) => {
      const decomposition = svdStrategy.decompose({ ...target, kernel }, options({ energy }), trained);
      disposeDecomposition(decomposition);
      return decomposition.info?.rank;
    };
    expect([rankFor(0.5), rankFor(0.8), rankFor(0.9), rankFor(1)]).toEqual([1, 2, 3, 4]);
    kernel.dispose();
    model.dispose();
  });
});

describe('from scratch', () => {
  it('uses seeded LeCun/He-uniform initialisers so the composite kernel has He variance', () => {
    const spec: ConvSpec = { inputShape: [8, 8, 32], filters: 64, kernelSize: [3, 3] };
    const { model, target } = convTarget(spec);
    const scratch = { init: 'scratch', seed: 5 } as const;
    const build = () => {
      const decomposition = svdStrategy.decompose(target, options({ rank: 32 }), scratch);
      expect(decomposition.weights).toBeUndefined();
      const rewritten = decomposedModel(spec.inputShape, decomposition);
      const [first, second] = decomposition.layers.map((layer) => layer.getWeights()[0]!);
      const composite = composedKernel('weight', first!, second!);
      const values = Array.from(composite.dataSync());
      composite.dispose();
      rewritten.dispose();
      return values;
    };
    const values = build();
    expect(heScaleRatio(values, 9 * 32)).toBeGreaterThan(0.9);
    expect(heScaleRatio(values, 9 * 32)).toBeLessThan(1.1);
    expect(build()).toEqual(values);
    model.dispose();
  });
});

describe('options and support', () => {
  const message = (input: unknown) => {
    const result = svdOptionsSchema.safeParse(input);
    return result.success ? 'parsed' : result.error.issues.map((issue) => issue.message).join('; ');
  };

  it('explains bad options', () => {
    expect(message({})).toMatch(/exactly one of rank, ratio or energy \(got none\)/);
    expect(message({ rank: 4, ratio: 0.5 })).toMatch(/got rank and ratio/);
    expect(message({ rank: 1.5 })).toMatch(/whole number/);
    expect(message({ rank: 0 })).toMatch(/at least 1/);
    expect(message({ ratio: 4 })).toMatch(/for 4× compression use 0\.25/);
    expect(message({ ratio: 3 })).toMatch(/for 3× compression use 0\.333$/);
    expect(message({ energy: 0 })).toMatch(/energy must be > 0/);
    expect(message({ mode: 'diagonal', rank: 2 })).toMatch(/mode must be 'weight'/);
    expect(message({ rnak: 2 })).toMatch(/rnak/);
    expect(svdOptionsSchema.parse({ ratio: 0.5 })).toEqual({ mode: 'weight', ratio: 0.5 });
  });

  it('gives reasons for layers it cannot rewrite', () => {
    const { model, target } = convTarget({ inputShape: [6, 6, 4], filters: 8, kernelSize: [3, 3] });
    const pointwise = convTarget({ inputShape: [6, 6, 4], filters: 8, kernelSize: [1, 3] });
    const reason = (support: ReturnType<typeof svdStrategy.supports>) => (support.ok ? 'ok' : support.reason);
    expect(reason(svdStrategy.supports(target, options({ rank: 8 })))).toBe('ok');
    expect(reason(svdStrategy.supports({ ...target, className: 'Conv1D' }, options({ rank: 2 })))).toMatch(
      /Conv2D and Dense layers only, not Conv1D/,
    );
    expect(
      reason(svdStrategy.supports({ ...target, className: 'DepthwiseConv2D' }, options({ rank: 2 }))),
    ).toMatch(/^depthwise convolution: each output channel has its own single k×k filter/);
    expect(reason(svdStrategy.supports(target, options({ rank: 9 })))).toMatch(
      /rank 9 exceeds .* rank 8 .*min\(3·3·4, 8\)/,
    );
    expect(reason(svdStrategy.supports(target, options({ mode: 'spatial', rank: 13 })))).toMatch(
      /min\(3·4, 3·8\)/,
    );
    expect(reason(svdStrategy.supports(pointwise.target, options({ mode: 'spatial', rank: 2 })))).toMatch(
      /needs both ≥ 2 \(got 1×3\)/,
    );
    expect(reason(svdStrategy.supports(target, options({ ratio: 0.01 })))).toMatch(/below the 52 of rank 1/);
    expect(() => svdStrategy.decompose(target, options({ rank: 9 }), trained)).toThrow(SvdTargetError);
    model.dispose();
    pointwise.model.dispose();
  });
});

describe('cost', () => {
  const shape = sameConvShape(16, 32, 3, 2, 32, true);

  it('counts both convolutions exactly', () => {
    // weight: 3·3·16·8 at 16×16, then 8·32 (+32 bias) at 16×16.
    expect(svdStrategy.cost(shape, options({ rank: 8 }))).toEqual({
      params: 1152 + 256 + 32,
      forwardMacs: (1152 + 256) * 256,
      backwardMacs: 2 * (1152 + 256) * 256,
    });
    // spatial: 3·16·8 at 16×32 (vertical stride only), then 3·8·32 (+32 bias) at 16×16.
    expect(svdStrategy.cost(shape, options({ mode: 'spatial', rank: 8 }))).toEqual({
      params: 384 + 768 + 32,
      forwardMacs: 384 * 512 + 768 * 256,
      backwardMacs: 2 * (384 * 512 + 768 * 256),
    });
  });

  it('turns a ratio into the largest rank within the parameter budget', () => {
    const dense = 3 * 3 * 16 * 32 + 32;
    for (const mode of ['weight', 'spatial'] as const) {
      const { params } = svdStrategy.cost(shape, options({ mode, ratio: 0.3 }));
      const perRank = mode === 'weight' ? 3 * 3 * 16 + 32 : 3 * 16 + 3 * 32;
      expect(params).toBeLessThanOrEqual(0.3 * dense);
      expect(params + perRank).toBeGreaterThan(0.3 * dense);
    }
  });

  it('refuses to cost an energy option or an impossible rank', () => {
    expect(() => svdStrategy.cost(shape, options({ energy: 0.9 }))).toThrow(SvdRankError);
    expect(() => svdStrategy.cost(shape, options({ rank: 33 }))).toThrow(/exceeds/);
  });
});

it('round-trips through save and load as stock Conv2D layers', async () => {
  const spec: ConvSpec = {
    inputShape: [9, 9, 5],
    filters: 7,
    kernelSize: [3, 3],
    strides: [2, 2],
    activation: 'relu',
  };
  for (const mode of ['weight', 'spatial'] as const) {
    const { model, target } = convTarget(spec);
    const decomposition = svdStrategy.decompose(target, options({ mode, rank: 4 }), trained);
    const rewritten = decomposedModel(spec.inputShape, decomposition);
    disposeDecomposition(decomposition);
    let saved: tf.io.ModelArtifacts | undefined;
    await rewritten.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await loadLayersModel(tf.io.fromMemory(saved!));
    expect(loaded.layers.slice(1).map((layer) => layer.getClassName())).toEqual(['Conv2D', 'Conv2D']);
    const x = tf.randomNormal([1, ...spec.inputShape], 0, 1, 'float32', 4);
    const [a, b] = [rewritten.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(relativeDifference(b, a)).toBeLessThan(1e-6);
    tf.dispose([x, a, b]);
    for (const m of [model, rewritten, loaded]) m.dispose();
  }
});

it('leaks no tensors across repeated decompositions', () => {
  const { model, target } = convTarget({ inputShape: [6, 6, 4], filters: 8, kernelSize: [3, 3] });
  const run = () => {
    for (const input of [{ rank: 3 }, { mode: 'spatial', energy: 0.9 }] as const) {
      for (const init of ['trained', 'scratch'] as const) {
        disposeDecomposition(svdStrategy.decompose(target, options(input), { init, seed: 1 }));
      }
    }
  };
  run();
  const before = tf.memory().numTensors;
  run();
  run();
  expect(tf.memory().numTensors).toBe(before);
  model.dispose();
});

it('states the version of its package', () => {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  expect(svdStrategy.version).toBe(SVD_VERSION);
  expect(SVD_VERSION).toBe(manifest.version);
});

it('refactorizes a kernel whose weights changed since the last decomposition', () => {
  const spec: ConvSpec = { inputShape: [6, 6, 4], filters: 5, kernelSize: [3, 3] };
  const { model, target } = convTarget(spec);
  const fullRank = options({ rank: 5 });
  disposeDecomposition(svdStrategy.decompose(target, fullRank, trained));
  // Training assigns new values to the layer's variables; the target then carries the new kernel.
  const retrained = target.layer.getWeights().map((w) => tf.randomNormal(w.shape, 0, 1, 'float32', 9));
  target.layer.setWeights(retrained);
  tf.dispose(retrained);
  const [kernel] = target.layer.getWeights();
  const decomposition = svdStrategy.decompose(
    { ...target, kernel: kernel as tf.Tensor4D },
    fullRank,
    trained,
  );
  const [first, second] = (decomposition.weights ?? []).map((weights) => weights[0]);
  const composed = composedKernel('weight', first!, second!);
  expect(relativeDifference(composed, kernel!)).toBeLessThan(1e-5);
  composed.dispose();
  disposeDecomposition(decomposition);
  model.dispose();
});
