import { applyStrategy, costTable, type Decomposition } from '@decompose/core';
import { type DenseSpec, decomposedModel, denseTarget, relativeDifference } from '@decompose/core/testing';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import {
  model as functionalModel,
  input,
  layers,
  loadLayersModel,
  type SymbolicTensor,
} from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { BasisDense } from './basis-dense.js';
import { fitBasis } from './fit.js';
import { type BasisOptionsInput, basisOptionsSchema } from './options.js';
import { basisStrategy } from './strategy.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const options = (raw: BasisOptionsInput) => basisOptionsSchema.parse(raw);

/** Relative difference between a Dense's output and its basis decomposition's on the same random input. */
function outputDifference(spec: DenseSpec, raw: BasisOptionsInput, init: 'trained' | 'scratch' = 'trained') {
  const { model, target } = denseTarget(spec);
  const decomposition: Decomposition = basisStrategy.decompose(target, options(raw), { init, seed: 7 });
  const rewritten = decomposedModel(spec.inputShape, decomposition);
  tf.dispose((decomposition.weights ?? []).flat());
  const x = tf.randomNormal([4, ...spec.inputShape], 0, 1, 'float32', 3);
  const expected = model.predict(x) as tf.Tensor;
  const actual = rewritten.predict(x) as tf.Tensor;
  const difference = relativeDifference(actual, expected);
  const kernel = Float32Array.from(target.denseKernel!.dataSync());
  tf.dispose([x, expected, actual]);
  model.dispose();
  rewritten.dispose();
  return { difference, decomposition, kernel };
}

describe('basis of a Dense layer', () => {
  it.each<[string, DenseSpec, BasisOptionsInput]>([
    ['24 → 10, bias, relu, shrunk', { inputShape: [24], units: 10, activation: 'relu' }, {}],
    ['at 5 positions, 12 → 16, no bias', { inputShape: [5, 12], units: 16, useBias: false }, {}],
    ['32 → 8, softmax, full form', { inputShape: [32], units: 8, activation: 'softmax' }, { form: 'full' }],
    ['20 → 6, tanh', { inputShape: [20], units: 6, activation: 'tanh' }, {}],
  ])('m = units reproduces the output (%s) with one BasisDense', (_, spec, raw) => {
    const full = { ...raw, m: spec.units, allowFullRank: true };
    const { difference, decomposition } = outputDifference(spec, full);
    expect(difference).toBeLessThan(1e-5);
    expect(decomposition.layers).toHaveLength(1);
    expect(decomposition.layers[0]).toBeInstanceOf(BasisDense);
    expect(decomposition.info?.relativeError).toBeLessThan(1e-6);
  });

  it('m basis neurons exactly reproduce units spanned by them (W = [I; A′]·B), in the original order', () => {
    // 6 units of which 3 are combinations of the other 3: rank-3 W, fitted exactly at m = 3.
    const { model, target } = denseTarget({ inputShape: [10], units: 6 });
    const b = tf.randomNormal([10, 3], 0, 0.3, 'float32', 5);
    const a = tf.randomNormal([3, 6], 0, 1, 'float32', 6);
    const w = tf.matMul(b, a);
    const bias = tf.randomNormal([6], 0, 0.1, 'float32', 4);
    model.getLayer('dense').setWeights([w, bias]);
    const rewritten = applyStrategy(model, basisStrategy, { options: { m: 3 } }).model;
    const x = tf.randomNormal([8, 10], 0, 1, 'float32', 9);
    const expected = model.predict(x) as tf.Tensor;
    const actual = rewritten.predict(x) as tf.Tensor;
    expect(relativeDifference(actual, expected)).toBeLessThan(1e-5);
    expect(target.className).toBe('Dense');
    tf.dispose([b, a, w, bias, x, expected, actual]);
    model.dispose();
    rewritten.dispose();
  });

  it('costs m·C_in + (units − m)·m MACs (and that plus the bias in params), as costTable finds', () => {
    const { model } = denseTarget({ inputShape: [64], units: 32 });
    const { model: rewritten, report } = applyStrategy(model, basisStrategy, { options: { ratio: 0.25 } });
    // m = 8: 8·64 + 24·8 = 704 weights, 32 biases.
    expect(report).toMatchObject([
      {
        layer: 'dense',
        className: 'Dense',
        replacements: ['dense'],
        info: { m: 8, form: 'shrunk' },
        before: { params: 64 * 32 + 32, forwardMacs: 2048 },
        after: { params: 736, forwardMacs: 704, backwardMacs: 1408 },
      },
    ]);
    const row = costTable(rewritten).rows.find((r) => r.name === 'dense')!;
    expect(row).toMatchObject({ className: 'BasisDense', source: 'layer', ...report[0]!.after });
    model.dispose();
    rewritten.dispose();
  });

  it('fits the trained weights with fitBasis, far better than a fresh initialisation', () => {
    const spec: DenseSpec = { inputShape: [48], units: 24 };
    const fitted = outputDifference(spec, { m: 12 });
    expect(fitted.decomposition.info?.relativeError).toBeCloseTo(
      fitBasis(fitted.kernel, 24, 12).relativeError,
      6,
    );
    const scratch = outputDifference(spec, { m: 12 }, 'scratch');
    expect(scratch.decomposition.weights).toBeUndefined();
    expect(fitted.difference).toBeLessThan(scratch.difference / 2);
  });

  it('refuses m ≥ units, unknown activations and sizes that save nothing, with reasons', () => {
    const { model, target } = denseTarget({ inputShape: [16], units: 8 });
    const reason = (raw: BasisOptionsInput, t = target) => {
      const support = basisStrategy.supports(t, options(raw));
      return support.ok ? 'ok' : support.reason;
    };
    expect(reason({ ratio: 0.5 })).toBe('ok');
    expect(reason({ m: 8 })).toMatch(/saves nothing/);
    expect(reason({ m: 6, form: 'full' })).toMatch(/needs 144 weights, not fewer than the dense 128/);
    expect(reason({}, { ...target, activation: 'selu' })).toMatch(/activation 'selu' is not supported/);
    model.dispose();
  });

  it('runs factored and folded with the same results, and round-trips through save and load', async () => {
    const inp = input({ shape: [12] });
    const args = {
      units: 6,
      basisSize: 2,
      activation: 'relu6',
      outputOrder: [3, 0, 4, 1, 5, 2],
      seed: 3,
    } as const;
    const factored = new BasisDense({ ...args, name: 'f', execution: 'factored' });
    const original = functionalModel({ inputs: inp, outputs: factored.apply(inp) as SymbolicTensor });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await original.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(loaded.layers[1]).toBeInstanceOf(BasisDense);
    expect((loaded.layers[1] as BasisDense).outputOrder).toEqual(args.outputOrder);
    const folded = new BasisDense({ ...args, name: 'g', execution: 'folded' });
    const foldedModel = functionalModel({ inputs: inp, outputs: folded.apply(inp) as SymbolicTensor });
    folded.setWeights(factored.getWeights());
    const x = tf.randomNormal([3, 12], 0, 1, 'float32', 2);
    const y = original.predict(x) as tf.Tensor;
    const fromLoaded = loaded.predict(x) as tf.Tensor;
    const fromFolded = foldedModel.predict(x) as tf.Tensor;
    expect(relativeDifference(fromLoaded, y)).toBeLessThan(1e-6);
    expect(relativeDifference(fromFolded, y)).toBeLessThan(1e-5);
    tf.dispose([x, y, fromLoaded, fromFolded]);
    for (const m of [original, loaded, foldedModel]) m.dispose();
  });

  it('trains: gradients reach the basis, the coefficients and the bias', () => {
    const layer = new BasisDense({ units: 5, basisSize: 2, seed: 1 });
    const x = tf.randomNormal([4, 7], 0, 1, 'float32', 1);
    layer.apply(x);
    const variables = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar,
      variables,
    );
    expect(layer.trainableWeights.map((w) => w.originalName.split('/').pop())).toEqual([
      'basis_kernel',
      'coefficients',
      'bias',
    ]);
    expect(variables.map((v) => grads[v.name]!.shape)).toEqual([[7, 2], [2, 3], [5]]);
    expect(variables.every((v) => tf.any(tf.notEqual(grads[v.name]!, 0)).dataSync()[0] === 1)).toBe(true);
    tf.dispose([x, ...Object.values(grads)]);
    layer.dispose();
  });

  it('rewrites the Dense head of a model by default, and leaks no tensors across repeated surgeries', () => {
    const x = input({ shape: [8, 8, 3] });
    let h = layers.conv2d({ name: 'conv', filters: 8, kernelSize: 3, padding: 'same' }).apply(x);
    h = layers.globalAveragePooling2d({}).apply(h);
    const y = layers.dense({ name: 'head', units: 10 }).apply(h) as typeof x;
    const model = functionalModel({ inputs: x, outputs: y });
    const run = () => {
      const surgery = applyStrategy(model, basisStrategy, { options: { ratio: 0.5 } });
      surgery.model.dispose();
      return surgery.report.map((r) => r.layer);
    };
    expect(run()).toEqual(['conv', 'head']);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
