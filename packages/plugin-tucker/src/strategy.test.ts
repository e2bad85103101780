import { readFileSync } from 'node:fs';
import type { Decomposition } from '@decompose/core';
import { loadStrategyPlugin } from '@decompose/core/node';
import '@tensorflow/tfjs-backend-cpu';
import {
  type ConvSpec,
  convTarget,
  decomposedModel,
  heScaleRatio,
  relativeDifference,
  sameConvShape,
} from '@decompose/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { TuckerRankError, TuckerTargetError } from './errors.js';
import { type TuckerOptionsInput, tuckerOptionsSchema } from './options.js';
import { TUCKER_VERSION, tuckerStrategy } from './strategy.js';

// Like any outside author, the plugin tests on a stock tfjs backend (the host application picks its own).
beforeAll(async () => {
  await tf.setBackend('cpu');
});

const trained = { init: 'trained', seed: 7 } as const;
const options = (input: TuckerOptionsInput) => tuckerOptionsSchema.parse(input);

function disposeDecomposition(decomposition: Decomposition): void {
  tf.dispose((decomposition.weights ?? []).flat());
}

/** The dense kernel `[k_h, k_w, C_in, C_out]` the three Tucker kernels compose to. */
function composedKernel([input, core, output]: tf.Tensor[]): tf.Tensor {
  return tf.tidy(() => {
    const [kh, kw, rIn, rOut] = core!.shape as number[];
    const cin = input!.shape[2]!;
    const cout = output!.shape[3]!;
    // Σ_a U_in[c,a] G[s,a,b] for each spatial position s, then Σ_b · U_out[o,b].
    const slices = tf.reshape(core!, [kh! * kw!, rIn!, rOut!]);
    const left = tf.matMul(tf.tile(tf.reshape(input!, [1, cin, rIn!]), [kh! * kw!, 1, 1]), slices);
    const right = tf.tile(tf.reshape(output!, [1, rOut!, cout]), [kh! * kw!, 1, 1]);
    return tf.reshape(tf.matMul(left, right), [kh!, kw!, cin, cout]);
  });
}

describe('full ranks reproduce the original convolution', () => {
  const specs: [string, ConvSpec][] = [
    ['3×3 same, bias, relu', { inputShape: [8, 8, 6], filters: 10, kernelSize: [3, 3], activation: 'relu' }],
    [
      '3×3 stride 2 valid',
      { inputShape: [9, 9, 5], filters: 7, kernelSize: [3, 3], strides: [2, 2], padding: 'valid' },
    ],
    [
      '5×3 stride 2 same, no bias',
      { inputShape: [11, 7, 4], filters: 6, kernelSize: [5, 3], strides: [2, 2], useBias: false },
    ],
    ['3×3 dilation 2 same', { inputShape: [10, 10, 3], filters: 8, kernelSize: [3, 3], dilation: [2, 2] }],
  ];
  it.each(specs)('%s', (_, spec) => {
    const { model, target } = convTarget(spec);
    const ranks: [number, number] = [spec.inputShape[2], spec.filters];
    const decomposition = tuckerStrategy.decompose(target, options({ ranks }), trained);
    expect(decomposition.info?.relativeError).toBeLessThan(1e-6);
    const rewritten = decomposedModel(spec.inputShape, decomposition);
    disposeDecomposition(decomposition);
    const x = tf.randomNormal([2, ...spec.inputShape], 0, 1, 'float32', 3);
    const expected = model.predict(x) as tf.Tensor;
    const actual = rewritten.predict(x) as tf.Tensor;
    expect(actual.shape).toEqual(expected.shape);
    expect(relativeDifference(actual, expected)).toBeLessThanOrEqual(1e-4);
    tf.dispose([x, expected, actual]);
    model.dispose();
    rewritten.dispose();
  });
});

it('reports the truncation error of the kernel it builds', () => {
  const { model, target } = convTarget({ inputShape: [8, 8, 8], filters: 12, kernelSize: [3, 3] });
  let previous = Number.POSITIVE_INFINITY;
  for (const ranks of [
    [2, 3],
    [4, 6],
    [6, 9],
  ] as [number, number][]) {
    const decomposition = tuckerStrategy.decompose(target, options({ ranks }), trained);
    const composed = composedKernel((decomposition.weights ?? []).map((weights) => weights[0]!));
    const error = relativeDifference(composed, target.kernel!);
    expect(decomposition.info?.relativeError).toBeCloseTo(error, 5);
    expect(error).toBeLessThan(previous);
    previous = error;
    composed.dispose();
    disposeDecomposition(decomposition);
  }
  model.dispose();
});

it('initialises from scratch with seeded LeCun/He-uniform kernels of He variance overall', () => {
  const spec: ConvSpec = { inputShape: [8, 8, 32], filters: 64, kernelSize: [3, 3] };
  const { model, target } = convTarget(spec);
  const build = () => {
    const decomposition = tuckerStrategy.decompose(target, options({ ranks: [24, 48] }), {
      init: 'scratch',
      seed: 3,
    });
    expect(decomposition.weights).toBeUndefined();
    const rewritten = decomposedModel(spec.inputShape, decomposition);
    const composed = composedKernel(decomposition.layers.map((layer) => layer.getWeights()[0]!));
    const values = Array.from(composed.dataSync());
    composed.dispose();
    rewritten.dispose();
    return values;
  };
  const values = build();
  expect(heScaleRatio(values, 9 * 32)).toBeGreaterThan(0.9);
  expect(heScaleRatio(values, 9 * 32)).toBeLessThan(1.1);
  expect(build()).toEqual(values);
  model.dispose();
});

describe('cost', () => {
  const shape = sameConvShape(16, 32, 3, 2, 32, true);

  it('counts the three convolutions exactly', () => {
    // 16·8 at the 32×32 input, 3·3·8·12 at 16×16, 12·32 (+32 bias) at 16×16.
    expect(tuckerStrategy.cost(shape, options({ ranks: [8, 12] }))).toEqual({
      params: 128 + 864 + 384 + 32,
      forwardMacs: 128 * 1024 + (864 + 384) * 256,
      backwardMacs: 2 * (128 * 1024 + (864 + 384) * 256),
    });
  });

  it('turns a ratio into proportional ranks within the parameter budget', () => {
    const dense = 3 * 3 * 16 * 32 + 32;
    for (const ratio of [0.1, 0.3, 0.6]) {
      const { params } = tuckerStrategy.cost(shape, options({ ratio }));
      expect(params).toBeLessThanOrEqual(ratio * dense);
      expect(params).toBeGreaterThan(0.75 * ratio * dense);
    }
  });

  it('refuses ranks the layer cannot have', () => {
    expect(() => tuckerStrategy.cost(shape, options({ ranks: [17, 4] }))).toThrow(TuckerRankError);
  });
});

describe('options and support', () => {
  const message = (input: unknown) => {
    const result = tuckerOptionsSchema.safeParse(input);
    return result.success ? 'parsed' : result.error.issues.map((issue) => issue.message).join('; ');
  };

  it('explains bad options', () => {
    expect(message({})).toMatch(/exactly one of ranks or ratio \(got neither\)/);
    expect(message({ ranks: [2, 2], ratio: 0.5 })).toMatch(/got both/);
    expect(message({ ranks: [2] })).toMatch(/ranks must be \[r_in, r_out\]/);
    expect(message({ ranks: [2, 0] })).toMatch(/r_out \(ranks\[1\]\) must be at least 1/);
    expect(message({ ranks: [2.5, 2] })).toMatch(/r_in \(ranks\[0\]\) must be a whole number/);
    expect(message({ ratio: 2 })).toMatch(/in \(0, 1\]/);
    expect(message({ rank: 2 })).toMatch(/rank/);
    expect(tuckerOptionsSchema.parse({ ratio: 0.5 })).toEqual({ ratio: 0.5 });
  });

  it('gives reasons for layers it cannot rewrite', () => {
    const { model, target } = convTarget({ inputShape: [6, 6, 4], filters: 8, kernelSize: [3, 3] });
    const reason = (support: ReturnType<typeof tuckerStrategy.supports>) =>
      support.ok ? 'ok' : support.reason;
    expect(reason(tuckerStrategy.supports(target, options({ ranks: [4, 8] })))).toBe('ok');
    expect(
      reason(tuckerStrategy.supports({ ...target, className: 'Dense' }, options({ ratio: 0.5 }))),
    ).toMatch(/Conv2D layers only, not Dense/);
    expect(reason(tuckerStrategy.supports(target, options({ ranks: [5, 8] })))).toMatch(
      /use r_in ≤ 4 and r_out ≤ 8/,
    );
    expect(reason(tuckerStrategy.supports(target, options({ ratio: 0.01 })))).toMatch(
      /below the .* of ranks \[1, 1\]/,
    );
    expect(() => tuckerStrategy.decompose(target, options({ ranks: [5, 8] }), trained)).toThrow(
      TuckerTargetError,
    );
    model.dispose();
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
  const { model, target } = convTarget(spec);
  const decomposition = tuckerStrategy.decompose(target, options({ ranks: [3, 4] }), trained);
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
  expect(loaded.layers.slice(1).map((layer) => layer.getClassName())).toEqual(['Conv2D', 'Conv2D', 'Conv2D']);
  const x = tf.randomNormal([1, ...spec.inputShape], 0, 1, 'float32', 4);
  const [a, b] = [rewritten.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
  expect(relativeDifference(b, a)).toBeLessThan(1e-6);
  tf.dispose([x, a, b]);
  for (const m of [model, rewritten, loaded]) m.dispose();
});

it('leaks no tensors across repeated decompositions', () => {
  const { model, target } = convTarget({ inputShape: [6, 6, 4], filters: 8, kernelSize: [3, 3] });
  const run = () => {
    for (const init of ['trained', 'scratch'] as const) {
      disposeDecomposition(tuckerStrategy.decompose(target, options({ ratio: 0.5 }), { init, seed: 1 }));
    }
  };
  run();
  const before = tf.memory().numTensors;
  run();
  run();
  expect(tf.memory().numTensors).toBe(before);
  model.dispose();
});

it('is a valid plugin: core loads its default export', async () => {
  const [strategy] = await loadStrategyPlugin(new URL('./index.ts', import.meta.url).href);
  expect(strategy).toBe(tuckerStrategy);
});

it('states the version of its package', () => {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  expect(TUCKER_VERSION).toBe(manifest.version);
});
