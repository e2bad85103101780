import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import {
  model as functionalModel,
  input,
  type LayersModel,
  layers,
  sequential,
} from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { convCost } from './cost.js';
import {
  InvalidDecompositionError,
  NonFiniteWeightsError,
  SelectionError,
  StrategyOptionsError,
  UnknownLayerError,
  UnsupportedLayerError,
  UnsupportedModelError,
} from './errors.js';
import type { DecompositionStrategy } from './strategy.js';
import { applyStrategy } from './surgery.js';
import { identityStrategy } from './test/identity-strategy.js';
import { smallResidualModel } from './test/models.js';

beforeAll(async () => {
  await initEngine();
});

/** Every weight of the model by layer name, as plain arrays. */
function weightsByLayer(model: LayersModel): Map<string, Float32Array[]> {
  return new Map(model.layers.map((l) => [l.name, l.getWeights().map((w) => w.dataSync() as Float32Array)]));
}

function predict(model: LayersModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

/** A test strategy rewriting a Dense as an equal Dense (and refusing everything else). */
const denseIdentity: DecompositionStrategy<{ ratio: number }> = {
  ...identityStrategy,
  name: 'dense-identity',
  optionsSchema: identityStrategy.optionsSchema.transform(({ ratio }) => ({ ratio })),
  supports: (target) =>
    target.dense === null ? { ok: false, reason: `it is a ${target.className}, not a Dense` } : { ok: true },
  decompose(target, _options, context) {
    const config = target.layer.getConfig() as unknown as Parameters<typeof layers.dense>[0];
    const layer = layers.dense({ ...config, name: `${target.name}.copy` });
    const weights =
      context.init === 'trained'
        ? [[target.denseKernel!.clone(), ...(target.bias ? [target.bias.clone()] : [])]]
        : [];
    return { layers: [layer], weights };
  },
  cost: (shape) => convCost(shape),
};

describe('default selection: every layer the strategy supports', () => {
  it('rewrites every supported convolution and lists the refused layers with a kernel, with reasons', () => {
    const original = smallResidualModel();
    const { model, report, skipped } = applyStrategy(original, identityStrategy, { options: { ratio: 0.5 } });
    expect(report.map((r) => r.layer)).toEqual(['stem.conv', 'block.conv1', 'block.conv2', 'down.conv']);
    expect(skipped).toEqual([
      { layer: 'down.proj', reason: '1×1 convolutions are already minimal' },
      { layer: 'down.frozen', reason: 'the layer is not trainable' },
      { layer: 'head', reason: 'it is a Dense, not a convolution' },
    ]);
    model.dispose();
    original.dispose();
  });

  it('offers Dense layers to a strategy that supports them, costed as the 1×1 convolution they equal', () => {
    const original = smallResidualModel();
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 3);
    const { model, report, skipped } = applyStrategy(original, denseIdentity);
    expect(report).toMatchObject([
      {
        layer: 'head',
        className: 'Dense',
        replacements: ['head.copy'],
        before: { params: 170, forwardMacs: 160, backwardMacs: 320 },
        after: { params: 170, forwardMacs: 160 },
      },
    ]);
    expect(skipped.map((s) => s.reason)).toContain('it is a Conv2D, not a Dense');
    expect(maxAbsDiff(predict(model, x), predict(original, x))).toBeLessThan(1e-6);
    model.dispose();
    original.dispose();
    x.dispose();
  });

  it('skips a depthwise convolution with the real reason, and refuses it by name', () => {
    const x = input({ shape: [8, 8, 4] });
    const h = layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, padding: 'same' }).apply(x);
    const y = layers.conv2d({ name: 'pw', filters: 8, kernelSize: 3 }).apply(h) as typeof x;
    const original = functionalModel({ inputs: x, outputs: y });
    const { model, report, skipped } = applyStrategy(original, identityStrategy);
    expect(report.map((r) => r.layer)).toEqual(['pw']);
    expect(skipped).toEqual([
      {
        layer: 'dw',
        reason:
          'depthwise convolution: each output channel has its own single k×k filter, so there is no cross-channel matrix to factor',
      },
    ]);
    const permissive = { ...identityStrategy, supports: () => ({ ok: true }) as const };
    expect(() => applyStrategy(original, permissive, { layers: ['dw'] })).toThrow(/depthwise convolution/);
    model.dispose();
    original.dispose();
  });
});

describe('applyStrategy on a small residual model', () => {
  it('rewrites the named convolutions, keeps every other weight, and computes the same function', () => {
    const original = smallResidualModel();
    const before = weightsByLayer(original);
    const layerNames = original.layers.map((l) => l.name);
    const x = tf.randomNormal([4, 8, 8, 3], 0, 1, 'float32', 1);
    const expected = predict(original, x);

    const { model, report, skipped } = applyStrategy(original, identityStrategy, {
      layers: ['stem.conv', 'block.conv1', 'down.conv'],
    });

    expect(maxAbsDiff(predict(model, x), expected)).toBeLessThanOrEqual(1e-5);
    expect(report.map((r) => [r.layer, r.replacements])).toEqual([
      ['stem.conv', ['stem.conv.copy']],
      ['block.conv1', ['block.conv1.copy']],
      ['down.conv', ['down.conv.copy']],
    ]);
    expect(report[1]).toMatchObject({
      className: 'Conv2D',
      options: { ratio: 1, suffix: 'copy' },
      info: { ratio: 1 },
      before: { params: 8 * 8 * 9 + 8, forwardMacs: 8 * 8 * 9 * 64 },
      after: { params: 8 * 8 * 9 + 8 },
    });
    expect(skipped).toEqual([]);
    const names = model.layers.map((l) => l.name);
    expect(names).not.toContain('block.conv1');
    expect(names).toContain('block.conv1.copy');

    // Untouched layers carry equal weights, in their own variables.
    const after = weightsByLayer(model);
    for (const name of ['stem.bn', 'block.conv2', 'down.proj', 'down.frozen', 'head']) {
      expect(after.get(name)).toEqual(before.get(name));
    }
    const originalVariables = new Set(original.weights.map((w) => w.read().id));
    expect(model.weights.some((w) => originalVariables.has(w.read().id))).toBe(false);
    expect(model.getLayer('down.frozen').trainable).toBe(false);

    // Changing the new model leaves the original as it was.
    const head = model.getLayer('head');
    const zeros = head.getWeights().map((w) => tf.zerosLike(w));
    head.setWeights(zeros);
    tf.dispose(zeros);
    expect(weightsByLayer(original)).toEqual(before);
    expect(original.layers.map((l) => l.name)).toEqual(layerNames);
    expect(maxAbsDiff(predict(original, x), expected)).toBe(0);

    model.dispose();
    original.dispose();
    x.dispose();
  });

  it('selects by glob, skipping frozen, non-convolution and unsupported layers, and by predicate', () => {
    const original = smallResidualModel();
    const byGlob = applyStrategy(original, identityStrategy, { layers: ['down.*', 'stem.**'] });
    expect(byGlob.report.map((r) => r.layer)).toEqual(['stem.conv', 'down.conv']);
    expect(byGlob.skipped).toEqual([
      {
        layer: 'stem.bn',
        reason:
          'the layer is a BatchNormalization, not a layer surgery rewrites (a channels-last Conv2D, Conv1D or SeparableConv2D, or a Dense)',
      },
      {
        layer: 'stem.relu',
        reason:
          'the layer is a ReLU, not a layer surgery rewrites (a channels-last Conv2D, Conv1D or SeparableConv2D, or a Dense)',
      },
      { layer: 'down.proj', reason: '1×1 convolutions are already minimal' },
      { layer: 'down.frozen', reason: 'the layer is not trainable' },
    ]);
    byGlob.model.dispose();

    const byPredicate = applyStrategy(original, identityStrategy, {
      layers: (t) => t.conv !== null && t.conv.outChannels === 8,
    });
    expect(byPredicate.report.map((r) => r.layer)).toEqual(['stem.conv', 'block.conv1', 'block.conv2']);
    byPredicate.model.dispose();
    original.dispose();
  });

  it('takes per-layer options over the shared ones, selecting their layers by default', () => {
    const original = smallResidualModel();
    const { model, report } = applyStrategy(original, identityStrategy, {
      options: { suffix: 'id' },
      perLayerOptions: { 'block.conv1': { ratio: 0.5 }, 'down.conv': { ratio: 0.25, suffix: 'x' } },
    });
    expect(report.map((r) => [r.layer, r.options, r.replacements[0]])).toEqual([
      ['block.conv1', { ratio: 0.5, suffix: 'id' }, 'block.conv1.id'],
      ['down.conv', { ratio: 0.25, suffix: 'x' }, 'down.conv.x'],
    ]);
    model.dispose();
    original.dispose();
  });

  it('lets a replacement keep the name of the layer it replaces, but no other name in use', () => {
    const original = smallResidualModel();
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 2);
    const { model, report } = applyStrategy(original, identityStrategy, {
      layers: 'block.*',
      options: { suffix: '' },
    });
    expect(report.map((r) => r.replacements)).toEqual([['block.conv1'], ['block.conv2']]);
    expect(maxAbsDiff(predict(model, x), predict(original, x))).toBeLessThanOrEqual(1e-5);
    model.dispose();

    const tensors = tf.memory().numTensors;
    const clash = {
      ...identityStrategy,
      decompose: () => ({ layers: [layers.conv2d({ name: 'head', filters: 8, kernelSize: 1 })] }),
    };
    expect(() => applyStrategy(original, clash, { layers: 'block.conv2' })).toThrow(
      "returned an invalid decomposition of layer 'block.conv2': layer name 'head' is already used in the model",
    );
    expect(tf.memory().numTensors).toBe(tensors);
    original.dispose();
    x.dispose();
  });

  it('is a pure function of model, strategy, options and seed', () => {
    const original = smallResidualModel();
    const run = (seed: number) => {
      const { model } = applyStrategy(original, identityStrategy, {
        layers: 'block.*',
        init: 'scratch',
        seed,
      });
      const weights = weightsByLayer(model);
      model.dispose();
      return weights;
    };
    const first = run(7);
    expect(run(7)).toEqual(first);
    expect(run(8).get('block.conv2.copy')).not.toEqual(first.get('block.conv2.copy'));
    // Layers of the same shape draw different numbers: each gets its own seed.
    expect(first.get('block.conv1.copy')?.[0]).not.toEqual(first.get('block.conv2.copy')?.[0]);
    original.dispose();
  });

  it('does not grow the number of tensors across repeated surgeries', () => {
    const original = smallResidualModel();
    const once = () => applyStrategy(original, identityStrategy, { layers: 'block.*' }).model.dispose();
    once();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) once();
    expect(tf.memory().numTensors).toBe(tensors);
    original.dispose();
  });
});

it('rewrites a Sequential model into an equivalent functional one', () => {
  const original = sequential({
    layers: [
      layers.conv2d({ inputShape: [6, 6, 2], name: 'conv', filters: 4, kernelSize: 3 }),
      layers.flatten({ name: 'flatten' }),
      layers.dense({ name: 'dense', units: 3 }),
    ],
  });
  const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 3);
  const { model, report } = applyStrategy(original, identityStrategy, { layers: 'conv' });
  expect(report.map((r) => r.before.forwardMacs)).toEqual([2 * 4 * 9 * 16]);
  expect(maxAbsDiff(predict(model, x), predict(original, x))).toBeLessThanOrEqual(1e-5);
  model.dispose();
  original.dispose();
  x.dispose();
});

describe('applyStrategy errors', () => {
  let original: LayersModel;
  beforeAll(() => {
    original = smallResidualModel();
  });

  it('rejects an explicitly named layer the strategy cannot handle, with its reason, but rewrites a frozen one', () => {
    const call = () => applyStrategy(original, identityStrategy, { layers: ['block.conv1', 'down.proj'] });
    expect(call).toThrow(UnsupportedLayerError);
    expect(call).toThrow(
      "Strategy 'identity' cannot rewrite layer 'down.proj': 1×1 convolutions are already minimal",
    );
    const frozen = applyStrategy(original, identityStrategy, { layers: 'down.frozen' });
    expect(frozen.model.getLayer('down.frozen.copy').trainable).toBe(false);
    frozen.model.dispose();
    expect(() => applyStrategy(original, identityStrategy, { layers: 'head' })).toThrow(
      "cannot rewrite layer 'head': it is a Dense, not a convolution",
    );
  });

  it('rejects a name or glob that matches nothing, listing close names', () => {
    const error = (() => {
      try {
        applyStrategy(original, identityStrategy, { layers: ['block.conv3'] });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(UnknownLayerError);
    expect((error as UnknownLayerError).closeNames).toEqual(['block.conv1', 'block.conv2']);
    expect(() => applyStrategy(original, identityStrategy, { layers: 'stage2.*.conv1' })).toThrow(
      "No layer of the model matches 'stage2.*.conv1'",
    );
    expect(() =>
      applyStrategy(original, identityStrategy, { perLayerOptions: { 'block.con1': {} } }),
    ).toThrow('Did you mean: block.conv1');
    expect(() => applyStrategy(original, identityStrategy, { layers: [] })).toThrow(SelectionError);
    // Given, an empty perLayerOptions still selects its (no) keys rather than the default.
    expect(() => applyStrategy(original, identityStrategy, { perLayerOptions: {} })).toThrow(SelectionError);
    expect(() =>
      applyStrategy(original, identityStrategy, {
        layers: ['stem.conv'],
        perLayerOptions: { 'block.conv1': {} },
      }),
    ).toThrow("perLayerOptions has options for 'block.conv1', which `layers` does not select");
  });

  it('rejects bad options naming the strategy, the field, the value and the expected form', () => {
    expect(() =>
      applyStrategy(original, identityStrategy, { layers: 'block.conv1', options: { ratio: 2 } }),
    ).toThrow(
      new StrategyOptionsError('identity', null, [
        { field: 'ratio', value: 2, expected: 'Too big: expected number to be <=1' },
      ]),
    );
    expect(() =>
      applyStrategy(original, identityStrategy, { perLayerOptions: { 'block.conv1': { ratio: 'half' } } }),
    ).toThrow(
      "Invalid options for strategy 'identity' for layer 'block.conv1': ratio: got \"half\", expected",
    );
  });

  it('rejects a decomposition that does not fit, without leaking tensors', () => {
    const wrongShape: DecompositionStrategy = {
      ...(identityStrategy as DecompositionStrategy),
      decompose: (target) => ({
        layers: [layers.conv2d({ name: `${target.name}.bad`, filters: 3, kernelSize: 1 })],
      }),
    };
    const tensors = tf.memory().numTensors;
    expect(() => applyStrategy(original, wrongShape, { layers: 'block.conv2' })).toThrow(
      InvalidDecompositionError,
    );
    expect(() => applyStrategy(original, wrongShape, { layers: 'block.conv2' })).toThrow(
      "its output shape [[null,8,8,3]] differs from the layer's [null,8,8,8]",
    );
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('refuses NaN or infinite weights in a layer to rewrite, naming it, before decomposing anything', () => {
    const damaged = smallResidualModel();
    const conv = damaged.getLayer('block.conv2');
    const [kernel] = conv.getWeights();
    const values = kernel!.dataSync().slice();
    values[5] = Number.NaN;
    values[9] = Number.POSITIVE_INFINITY;
    const poisoned = tf.tensor(values, kernel!.shape);
    conv.setWeights([poisoned]);
    poisoned.dispose();
    let decomposed = 0;
    const counting: DecompositionStrategy = {
      ...(identityStrategy as DecompositionStrategy),
      decompose: (...args) => {
        decomposed++;
        return (identityStrategy as DecompositionStrategy).decompose(...args);
      },
    };
    const tensors = tf.memory().numTensors;
    const call = () => applyStrategy(damaged, counting, { layers: ['stem.conv', 'block.conv2'] });
    expect(call).toThrow(new NonFiniteWeightsError('block.conv2', 'block.conv2/kernel', 2, 5, Number.NaN));
    expect(call).toThrow(
      /^Layer 'block\.conv2' holds non-finite weights: 2 values of 'block\.conv2\/kernel' are NaN or infinite \(the first, at index 5, is NaN\)\..*retrain the model, or re-export it/,
    );
    expect(decomposed).toBe(0);
    expect(tf.memory().numTensors).toBe(tensors);
    // Layers that are not rewritten may hold anything: the check is about what the strategy would read.
    const other = applyStrategy(damaged, counting, { layers: ['stem.conv'] });
    expect(decomposed).toBe(1);
    other.model.dispose();
    damaged.dispose();
  });

  it('rejects models with a layer called twice', () => {
    const x = input({ shape: [4, 4, 2] });
    const shared = layers.conv2d({ name: 'shared', filters: 2, kernelSize: 3, padding: 'same' });
    const y = shared.apply(shared.apply(x)) as ReturnType<typeof input>;
    const twice = functionalModel({ inputs: x, outputs: y });
    expect(() => applyStrategy(twice, identityStrategy, { layers: 'shared' })).toThrow(
      new UnsupportedModelError(
        'shared',
        'the layer is called 2 times in the model (shared weights); only layers called once are supported',
      ),
    );
    twice.dispose();
  });
});
