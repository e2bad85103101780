// SeparableConv2D: its depthwise step is kept as a stock DepthwiseConv2D and the strategy rewrites its pointwise
// 1×1 step, which it sees as a plain Conv2D.
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import {
  constraints,
  model as functionalModel,
  input,
  layers,
  regularizers,
  type SymbolicTensor,
} from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { costTable } from './cost-table.js';
import { UnsupportedLayerError } from './errors.js';
import { exportStock, isStockLayerClass, maxOutputDifference } from './export.js';
import { applyStrategy, type SurgeryResult } from './surgery.js';
import { describeLayer, unsupportedReason } from './target.js';
import { recordingConv2dIdentity } from './test/conv2d-identity.js';
import { savedAndLoaded, separableModel } from './testing.js';

let x: tf.Tensor;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  x = tf.randomNormal([2, 12, 12, 4], 0, 1, 'float32', 5);
});

/** The costTable rows of `result.model` for each report entry's replacements, summed. */
function replacementCosts(result: SurgeryResult) {
  const rows = costTable(result.model).rows;
  return result.report.map((entry) =>
    rows
      .filter((r) => entry.replacements.includes(r.name))
      .reduce((sum, r) => ({ params: sum.params + r.params, forwardMacs: sum.forwardMacs + r.forwardMacs }), {
        params: 0,
        forwardMacs: 0,
      }),
  );
}

describe('SeparableConv2D', () => {
  it('is a DepthwiseConv2D and the strategy’s Conv2D for its pointwise step, computing the same', () => {
    const original = separableModel();
    const { strategy, seen } = recordingConv2dIdentity();
    const before = costTable(original).rows;
    const result = applyStrategy(original, strategy);
    const { model, report, skipped } = result;
    expect(skipped).toEqual([]);
    // The strategy saw a plain Conv2D: the 1×1 pointwise kernel C_in·d → C_out, with the layer's bias.
    expect(seen).toEqual([
      { name: 'sep1', className: 'Conv2D', kernelShape: [1, 1, 4, 8], useBias: true },
      { name: 'sep2', className: 'Conv2D', kernelShape: [1, 1, 16, 12], useBias: true },
      { name: 'sep3', className: 'Conv2D', kernelShape: [1, 1, 24, 6], useBias: true },
    ]);
    expect(report.map((r) => [r.layer, r.className, r.replacements])).toEqual([
      ['sep1', 'SeparableConv2D', ['sep1_depthwise', 'sep1.copy']],
      ['sep2', 'SeparableConv2D', ['sep2_depthwise', 'sep2.copy']],
      ['sep3', 'SeparableConv2D', ['sep3_depthwise', 'sep3.copy']],
    ]);
    expect(report[1]!.notes).toEqual([
      "its depthwise step is kept as the DepthwiseConv2D 'sep2_depthwise' and the strategy rewrote its 1×1 pointwise step; before and after both count the depthwise step (144 params, 5184 forward MACs)",
    ]);
    const depthwise = model.getLayer('sep2_depthwise');
    expect(depthwise.getClassName()).toBe('DepthwiseConv2D');
    expect(depthwise.getConfig()).toMatchObject({ depthMultiplier: 2, strides: [2, 2], useBias: false });
    // `before` is the whole SeparableConv2D (costTable's row); `after` its kept depthwise step plus the rewrite.
    for (const [i, entry] of report.entries()) {
      expect(entry.before).toMatchObject({ params: before[i]!.params, forwardMacs: before[i]!.forwardMacs });
      expect(entry.after).toMatchObject(replacementCosts(result)[i]!);
    }
    expect(maxOutputDifference(model, original, x)).toBeLessThan(1e-5);
    model.dispose();
    original.dispose();
  });

  it('costs every step exactly: k²·C_in·d + C_in·d·C_out per output pixel', () => {
    const original = separableModel();
    const sep2 = costTable(original).rows.find((r) => r.name === 'sep2')!;
    // 3×3 depthwise over 8 channels × 2, then 16 → 12, on 6×6 output pixels.
    expect(sep2).toMatchObject({
      params: 9 * 8 * 2 + 16 * 12 + 12,
      forwardMacs: (9 * 8 * 2 + 16 * 12) * 36,
      source: 'builtin',
    });
    original.dispose();
  });

  it('leaves an unselected SeparableConv2D as it is, depth multiplier included', () => {
    const original = separableModel();
    const { strategy } = recordingConv2dIdentity();
    const { model, report } = applyStrategy(original, strategy, { layers: ['sep1'] });
    expect(report.map((r) => r.layer)).toEqual(['sep1']);
    expect(model.getLayer('sep2').getClassName()).toBe('SeparableConv2D');
    expect(maxOutputDifference(model, original, x)).toBeLessThan(1e-5);
    model.dispose();
    original.dispose();
  });

  it('exports to stock layers that load with a plain loadLayersModel and compute the same', async () => {
    const original = separableModel();
    const { strategy } = recordingConv2dIdentity();
    const { model } = applyStrategy(original, strategy);
    const { model: stock } = exportStock(model);
    const loaded = await savedAndLoaded(stock);
    expect(loaded.layers.every((l) => isStockLayerClass(l.getClassName()))).toBe(true);
    expect(maxOutputDifference(loaded, original, x)).toBeLessThan(1e-5);
    for (const m of [loaded, stock, model, original]) m.dispose();
  });

  it('carries the regularisers and constraints of both steps over', () => {
    const image = input({ shape: [8, 8, 3] });
    const layer = layers.separableConv2d({
      name: 'sep',
      filters: 4,
      kernelSize: 3,
      depthwiseRegularizer: regularizers.l2({ l2: 0.01 }),
      pointwiseRegularizer: regularizers.l1({ l1: 0.02 }),
      depthwiseConstraint: constraints.maxNorm({ maxValue: 2 }),
      biasConstraint: constraints.nonNeg(),
    });
    const original = functionalModel({ inputs: image, outputs: layer.apply(image) as SymbolicTensor });
    const { strategy } = recordingConv2dIdentity();
    const { model, report } = applyStrategy(original, strategy, { layers: ['sep'] });
    const slots = (l: unknown) => l as Record<string, unknown>;
    const [depthwise, pointwise] = [model.getLayer('sep_depthwise'), model.getLayer('sep.copy')].map(slots);
    expect(depthwise!.depthwiseRegularizer).toBe(slots(layer).depthwiseRegularizer);
    expect(depthwise!.depthwiseConstraint).toBe(slots(layer).depthwiseConstraint);
    expect(pointwise!.kernelRegularizer).toEqual(slots(layer).pointwiseRegularizer);
    expect(pointwise!.biasConstraint).toEqual(slots(layer).biasConstraint);
    expect(pointwise!.kernelRegularizer).not.toBeNull();
    expect(report[0]!.notes).toHaveLength(1); // only the depthwise note: everything was carried
    model.dispose();
    original.dispose();
  });

  it('refuses a channelsFirst one with the real reason, and by name', () => {
    const image = input({ shape: [3, 8, 8] });
    const layer = layers.separableConv2d({
      name: 'sep',
      filters: 4,
      kernelSize: 3,
      dataFormat: 'channelsFirst',
    });
    const original = functionalModel({ inputs: image, outputs: layer.apply(image) as SymbolicTensor });
    expect(unsupportedReason(describeLayer(original, 'sep'))).toMatch(/^channelsFirst convolution/);
    const { strategy } = recordingConv2dIdentity();
    const { model, skipped } = applyStrategy(original, strategy);
    expect(skipped.map((s) => s.reason)).toEqual([expect.stringMatching(/^channelsFirst convolution/)]);
    expect(() => applyStrategy(original, strategy, { layers: ['sep'] })).toThrow(UnsupportedLayerError);
    model.dispose();
    original.dispose();
  });

  it('refuses a dilated one: tfjs-layers’ DepthwiseConv2D, which would keep its depthwise step, ignores dilation', () => {
    const image = input({ shape: [12, 12, 3] });
    const layer = layers.separableConv2d({ name: 'sep', filters: 4, kernelSize: 3, dilationRate: 2 });
    const original = functionalModel({ inputs: image, outputs: layer.apply(image) as SymbolicTensor });
    const { strategy } = recordingConv2dIdentity();
    const { model, skipped } = applyStrategy(original, strategy);
    expect(skipped).toEqual([
      {
        layer: 'sep',
        reason: expect.stringMatching(/^dilated separable convolution: .* ignores dilationRate$/),
      },
    ]);
    model.dispose();
    original.dispose();
  });

  it('leaks no tensor, whether the rewrite succeeds or the strategy refuses a layer by name', () => {
    const original = separableModel();
    const { strategy } = recordingConv2dIdentity();
    const refusing = { ...strategy, supports: () => ({ ok: false, reason: 'no' }) as const };
    applyStrategy(original, strategy).model.dispose(); // warm-up: tfjs caches a few tensors once
    const count = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      applyStrategy(original, strategy).model.dispose();
      expect(() => applyStrategy(original, refusing, { layers: ['sep2'] })).toThrow(UnsupportedLayerError);
    }
    expect(tf.memory().numTensors).toBe(count);
    original.dispose();
  });
});
