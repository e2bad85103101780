import { describe, expect, it } from 'vitest';
import { type Budget, BudgetError, selectGreedy, selectPerLayer } from './selection.js';
import type { SensitivityTable } from './table.js';

const cost = (params: number) => ({ params, forwardMacs: params * 100, backwardMacs: params * 200 });

/** Three layers of 1000 params; `robust` barely cares, `fragile` loses a lot, `middle` in between. */
function table(withTimes = false): SensitivityTable {
  const drops: Record<string, number[]> = {
    robust: [0.004, 0.001, 0.0],
    fragile: [0.2, 0.1, 0.05],
    middle: [0.03, 0.01, -0.002],
  };
  const ratios = [0.25, 0.5, 0.75];
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
        metric: { accuracy: 0.8 - (ds[i] ?? 0), loss: 0.6 },
        cost: cost(1000 * ratio),
        ...(withTimes ? { measuredMs: 10 * ratio } : {}),
      })),
    ),
    calibrationSize: 500,
    fineTuneSteps: 0,
    seconds: 1,
  };
}

const params40: Budget = { kind: 'reduction', target: 'params', reduction: 0.4 };

describe('selectGreedy', () => {
  it('spends the budget on the least sensitive layers first', () => {
    const s = selectGreedy(table(), params40);
    expect(s.met).toBe(true);
    expect(s.reduction.params).toBeGreaterThanOrEqual(0.4);
    expect(s.choices.map((c) => c.layer)).not.toContain('fragile');
    expect(s.choices.find((c) => c.layer === 'robust')?.ratio).toBe(0.25);
    expect(s.after.params).toBe(s.before.params - s.choices.reduce((sum, c) => sum + c.saving.params, 0));
  });

  it('stays under an accuracy tolerance', () => {
    const s = selectGreedy(table(), { kind: 'tolerance', maxDrop: 0.005 });
    expect(s.estimatedDrop).toBeLessThanOrEqual(0.005);
    expect(s.choices.map((c) => [c.layer, c.ratio])).toEqual([
      ['robust', 0.25],
      ['middle', 0.75],
    ]);
  });

  it('reports an unreachable budget instead of pretending', () => {
    const s = selectGreedy(table(), { kind: 'reduction', target: 'params', reduction: 0.9 });
    expect(s.met).toBe(false);
    expect(s.choices).toHaveLength(3);
  });

  it('is deterministic', () => {
    expect(selectGreedy(table(), params40)).toEqual(selectGreedy(table(), params40));
  });
});

describe('selectPerLayer', () => {
  it('finds the smallest per-layer drop threshold that reaches the budget', () => {
    const s = selectPerLayer(table(), params40);
    expect(s.met).toBe(true);
    // threshold 0.004: robust@0.25 (750) + middle@0.75 (250) = 1000 < 1200; 0.01 adds middle@0.5 → 1250.
    expect(s.threshold).toBeCloseTo(0.01, 12);
    expect(s.choices.map((c) => [c.layer, c.ratio])).toEqual([
      ['robust', 0.25],
      ['middle', 0.5],
    ]);
    expect(s.reduction.params).toBeCloseTo(1250 / 3000);
  });

  it('budgets measured time when the scan measured it, and refuses otherwise', () => {
    const budget: Budget = { kind: 'reduction', target: 'time', reduction: 0.3 };
    expect(selectPerLayer(table(true), budget).reduction.time).toBeGreaterThanOrEqual(0.3);
    expect(() => selectPerLayer(table(false), budget)).toThrow(BudgetError);
  });

  it('rejects an invalid budget with the reason', () => {
    expect(() => selectPerLayer(table(), { kind: 'reduction', target: 'params', reduction: 1.5 })).toThrow(
      /Invalid budget/,
    );
  });
});
