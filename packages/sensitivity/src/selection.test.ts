import { describe, expect, it } from 'vitest';
import {
  type Budget,
  BudgetError,
  type Selection,
  type SensitivityMetric,
  selectGreedy,
  selectPerLayer,
} from './selection.js';
import type { SensitivityTable } from './table.js';

const cost = (params: number) => ({ params, forwardMacs: params * 100, backwardMacs: params * 200 });

/**
 * A table of layers of 1000 params each; `drops[layer][i]` is the accuracy drop at `ratios[i]`, `losses` the
 * loss increases (default 0). A layer at ratio r keeps 1000·r params.
 */
function makeTable(
  ratios: number[],
  drops: Record<string, number[]>,
  losses: Record<string, number[]> = {},
  withTimes = false,
): SensitivityTable {
  return {
    strategy: { name: 'test', version: '0.0.0' },
    baseline: { accuracy: 0.8, loss: 0.6 },
    ratios,
    layers: Object.keys(drops).map((layer) => ({
      layer,
      cost: cost(1000),
      ...(withTimes ? { measuredMs: 10 } : {}),
    })),
    entries: Object.entries(drops).flatMap(([layer, ds]) =>
      ratios.map((ratio, i) => ({
        layer,
        ratio,
        options: { ratio },
        metric: { accuracy: 0.8 - (ds[i] ?? 0), loss: 0.6 + (losses[layer]?.[i] ?? 0) },
        cost: cost(1000 * ratio),
        ...(withTimes ? { measuredMs: 10 * ratio } : {}),
      })),
    ),
    calibrationSize: 500,
    fineTuneSteps: 0,
    seconds: 1,
  };
}

/** Three layers; `robust` barely cares, `fragile` loses a lot, `middle` in between. */
const table = (withTimes = false) =>
  makeTable(
    [0.25, 0.5, 0.75],
    { robust: [0.004, 0.001, 0.0], fragile: [0.2, 0.1, 0.05], middle: [0.03, 0.01, -0.002] },
    {},
    withTimes,
  );

const GRID = [0.125, 0.25, 0.5, 0.75];

/**
 * Eight layers whose accuracy never moves (a small calibration split: every drop ties at 0) while the loss
 * grows with the layer's index and its compression: layer k at ratio r costs (k + 1)·0.01·(1 − r) in loss.
 */
function flatAccuracyTable(): SensitivityTable {
  const names = Array.from({ length: 8 }, (_, k) => `layer${k}`);
  return makeTable(
    GRID,
    Object.fromEntries(names.map((n) => [n, GRID.map(() => 0)])),
    Object.fromEntries(names.map((n, k) => [n, GRID.map((r) => (k + 1) * 0.01 * (1 - r))])),
  );
}

const params40: Budget = { kind: 'reduction', target: 'params', reduction: 0.4 };
const pairs = (s: Selection) => s.choices.map((c) => [c.layer, c.ratio]);

/**
 * True when no single move of a chosen layer to another scanned ratio that saves less, or back to dense, would
 * still meet the params budget: the selection is as close to the budget as one-layer changes can bring it.
 */
function tight(t: SensitivityTable, s: Selection, reduction: number): boolean {
  const dense = t.layers[0]!.cost.params;
  const goal = reduction * s.before.params;
  const saved = s.before.params - s.after.params;
  return s.choices.every((c) => {
    const now = c.saving.params;
    const milder = t.entries.filter((e) => e.layer === c.layer && dense - e.cost.params < now);
    return [0, ...milder.map((e) => dense - e.cost.params)].every((less) => saved - now + less < goal);
  });
}

describe('selectGreedy', () => {
  it('spends the budget on the least sensitive layers first', () => {
    const s = selectGreedy(table(), params40);
    expect(s.met).toBe(true);
    expect(s.metric).toBe('accuracy');
    expect(s.reduction.params).toBeGreaterThanOrEqual(0.4);
    expect(s.choices.map((c) => c.layer)).not.toContain('fragile');
    expect(s.choices.find((c) => c.layer === 'robust')?.ratio).toBe(0.25);
    expect(s.after.params).toBe(s.before.params - s.choices.reduce((sum, c) => sum + c.saving.params, 0));
  });

  it('stays under an accuracy tolerance', () => {
    const s = selectGreedy(table(), { kind: 'tolerance', maxDrop: 0.005 });
    expect(s.estimatedDrop).toBeLessThanOrEqual(0.005);
    expect(pairs(s)).toEqual([
      ['robust', 0.25],
      ['middle', 0.75],
    ]);
  });

  it('reports an unreachable budget instead of pretending', () => {
    const s = selectGreedy(table(), { kind: 'reduction', target: 'params', reduction: 0.9 });
    expect(s.met).toBe(false);
    expect(s.choices).toHaveLength(3);
  });

  it('trims its last, overshooting upgrade back to the budget', () => {
    // Free upgrades go largest first: four layers at 0.125 remove 3500 of 8000 (43.75%) for a 40% budget;
    // the nearest reachable saving at or above 3200 is 3250 (savings are multiples of 125).
    const s = selectGreedy(flatAccuracyTable(), params40);
    expect(s.reduction.params).toBeCloseTo(3250 / 8000, 12);
    expect(s.untrimmedReduction).toBeCloseTo(3500 / 8000, 12);
    expect(s.met).toBe(true);
    expect(tight(flatAccuracyTable(), s, 0.4)).toBe(true);
  });

  it('ranks by the loss increase with metric loss, and bounds a tolerance in loss', () => {
    const s = selectGreedy(flatAccuracyTable(), params40, { metric: 'loss' });
    expect(s.metric).toBe('loss');
    expect(s.reduction.params).toBeCloseTo(3250 / 8000, 12);
    // The cheapest loss per saving is the least sensitive layers' mildest ratios: layer0..layer7 in order.
    const byAccuracy = selectGreedy(flatAccuracyTable(), params40);
    expect(s.estimatedLossIncrease).toBeLessThan(byAccuracy.estimatedLossIncrease);
    const tolerance = selectGreedy(
      flatAccuracyTable(),
      { kind: 'tolerance', maxDrop: 0.01 },
      { metric: 'loss' },
    );
    expect(tolerance.estimatedLossIncrease).toBeLessThanOrEqual(0.01 + 1e-12);
    expect(tolerance.choices.length).toBeGreaterThan(0);
  });

  it('is deterministic', () => {
    expect(selectGreedy(table(), params40)).toEqual(selectGreedy(table(), params40));
    expect(selectGreedy(flatAccuracyTable(), params40, { metric: 'loss' })).toEqual(
      selectGreedy(flatAccuracyTable(), params40, { metric: 'loss' }),
    );
  });
});

describe('selectPerLayer', () => {
  it('finds the smallest per-layer drop threshold that reaches the budget', () => {
    const s = selectPerLayer(table(), params40);
    expect(s.met).toBe(true);
    // threshold 0.004: robust@0.25 (750) + middle@0.75 (250) = 1000 < 1200; 0.01 adds middle@0.5 → 1250.
    expect(s.threshold).toBeCloseTo(0.01, 12);
    expect(pairs(s)).toEqual([
      ['robust', 0.25],
      ['middle', 0.5],
    ]);
    expect(s.reduction.params).toBeCloseTo(1250 / 3000);
    expect(s.untrimmedReduction).toBeCloseTo(1250 / 3000);
  });

  it('hits the budget when the accepted drop admits every layer at its most compressive ratio', () => {
    // Every accuracy drop is 0, so threshold 0 already admits all eight layers at 0.125: 87.5% removed for a
    // 40% budget. The answer must come back to the nearest reachable reduction, 3250 of 8000.
    const t = flatAccuracyTable();
    const s = selectPerLayer(t, params40);
    expect(s.reduction.params).toBeCloseTo(3250 / 8000, 12);
    expect(s.threshold).toBe(0);
    expect(s.untrimmedReduction).toBeCloseTo(0.875, 12);
    expect(s.met).toBe(true);
    expect(s.after.params).toBe(8000 - 3250);
    expect(tight(t, s, 0.4)).toBe(true);
    expect(selectPerLayer(t, params40)).toEqual(s);
  });

  it('gives back first the layer that returns the most drop per unit of saving', () => {
    // At threshold 0.006 both take 0.25 (1500 of 2000 for a 60% budget, 1200). Moving `steep` to 0.5 gives back
    // 0.005 for 250 params, `gentle` only 0.003: `steep` moves, and the estimated drop is 0.007, not 0.009.
    const t = makeTable(GRID, { gentle: [0.009, 0.006, 0.003, 0], steep: [0.009, 0.006, 0.001, 0] });
    const s = selectPerLayer(t, { kind: 'reduction', target: 'params', reduction: 0.6 });
    expect(pairs(s)).toEqual([
      ['gentle', 0.25],
      ['steep', 0.5],
    ]);
    expect(s.threshold).toBeCloseTo(0.006, 12);
    expect(s.untrimmedReduction).toBeCloseTo(0.75, 12);
    expect(s.reduction.params).toBeCloseTo(0.625, 12);
    expect(s.estimatedDrop).toBeCloseTo(0.007, 12);
  });

  it('searches the loss increase with metric loss', () => {
    const t = flatAccuracyTable();
    const s = selectPerLayer(t, params40, { metric: 'loss' });
    expect(s.metric).toBe('loss');
    // t = 0.0175 (layer1 at 0.125, layer6 at 0.75) is the first threshold reaching 3200: 875 + 875 + 500 + 4·250.
    expect(s.threshold).toBeCloseTo(0.0175, 12);
    expect(pairs(s)).toEqual([
      ['layer0', 0.125],
      ['layer1', 0.125],
      ['layer2', 0.5],
      ['layer3', 0.75],
      ['layer4', 0.75],
      ['layer5', 0.75],
      ['layer6', 0.75],
    ]);
    expect(s.reduction.params).toBeCloseTo(3250 / 8000, 12);
    expect(s.estimatedLossIncrease).toBeCloseTo(
      0.00875 + 0.0175 + 0.015 + 0.01 + 0.0125 + 0.015 + 0.0175,
      12,
    );
    for (const c of s.choices) expect(c.lossIncrease).toBeLessThanOrEqual(s.threshold! + 1e-12);
    // A tolerance is a per-layer bound in the metric's units.
    const tolerance = selectPerLayer(t, { kind: 'tolerance', maxDrop: 0.005 }, { metric: 'loss' });
    expect(pairs(tolerance)).toEqual([
      ['layer0', 0.5],
      ['layer1', 0.75],
    ]);
  });

  it('budgets measured time when the scan measured it, and refuses otherwise', () => {
    const budget: Budget = { kind: 'reduction', target: 'time', reduction: 0.3 };
    expect(selectPerLayer(table(true), budget).reduction.time).toBeGreaterThanOrEqual(0.3);
    expect(() => selectPerLayer(table(false), budget)).toThrow(BudgetError);
  });

  it('leaves dense a layer whose decomposition measured slower, under a time budget', () => {
    const t = table(true);
    // `robust` saves params at every ratio but runs slower decomposed: 12 ms against 10 ms dense.
    for (const e of t.entries) if (e.layer === 'robust') e.measuredMs = 12;
    const s = selectPerLayer(t, { kind: 'reduction', target: 'time', reduction: 0.1 });
    expect(s.choices.map((c) => c.layer)).not.toContain('robust');
    expect(s.met).toBe(true);
  });

  it('rejects an invalid budget or metric with the reason', () => {
    expect(() => selectPerLayer(table(), { kind: 'reduction', target: 'params', reduction: 1.5 })).toThrow(
      /Invalid budget/,
    );
    expect(() => selectGreedy(table(), params40, { metric: 'top5' as SensitivityMetric })).toThrow(
      /Invalid metric "top5": expected accuracy or loss/,
    );
  });
});
