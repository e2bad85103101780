import { z } from 'zod';
import { accuracyDrop, type ScanEntry, type SensitivityTable } from './table.js';

/** What a budget counts: parameters, forward multiply-adds, or measured forward+backward time. */
export type BudgetTarget = 'params' | 'macs' | 'time';

/** zod schema of a {@link Budget}; configs are parsed with it. */
export const budgetSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('reduction'),
    target: z.enum(['params', 'macs', 'time']),
    /** Fraction of the scanned layers' total to remove, in (0, 1). */
    reduction: z.number().gt(0).lt(1),
  }),
  z.object({
    kind: z.literal('tolerance'),
    /** Largest accepted accuracy drop (absolute, e.g. 0.01 = one percentage point). */
    maxDrop: z.number().nonnegative(),
  }),
]);

/** A compression budget (remove a fraction of params/MACs/time) or an accuracy tolerance. */
export type Budget = z.infer<typeof budgetSchema>;

/** One chosen layer and ratio, with what it is expected to cost in accuracy and save. */
export interface Choice {
  layer: string;
  ratio: number;
  options: unknown;
  /** Calibration accuracy drop measured when only this layer was decomposed. */
  drop: number;
  saving: { params: number; macs: number; ms: number | null };
}

/** Totals over the scanned layers. */
export interface CostTotals {
  params: number;
  macs: number;
  ms: number | null;
}

/** A selector's answer, with enough detail to explain it. */
export interface Selection {
  method: 'greedy' | 'per-layer';
  budget: Budget;
  /** Chosen layers in the table's layer order. */
  choices: Choice[];
  /** Dense totals of the scanned layers, and the totals after the chosen decompositions. */
  before: CostTotals;
  after: CostTotals;
  /** Achieved fraction removed (time is null when the scan measured no times). */
  reduction: { params: number; macs: number; time: number | null };
  /** Sum of the chosen entries' single-layer drops: the selector's estimate of the total drop. */
  estimatedDrop: number;
  /** Whether the budget was reached (always true for a tolerance). */
  met: boolean;
  /** Per-layer search: the accepted per-layer drop it settled on. */
  threshold?: number;
}

/** Thrown when a budget cannot be evaluated on a table (e.g. a time budget on a scan without timings). */
export class BudgetError extends Error {
  override readonly name = 'BudgetError';
}

interface Candidate {
  entry: ScanEntry;
  layerIndex: number;
  drop: number;
  saving: Choice['saving'];
}

function candidates(table: SensitivityTable): Candidate[][] {
  return table.layers.map((base, layerIndex) =>
    table.entries
      .filter((e) => e.layer === base.layer)
      .map((entry) => ({
        entry,
        layerIndex,
        drop: accuracyDrop(table, entry),
        saving: {
          params: base.cost.params - entry.cost.params,
          macs: base.cost.forwardMacs - entry.cost.forwardMacs,
          ms:
            base.measuredMs === undefined || entry.measuredMs === undefined
              ? null
              : base.measuredMs - entry.measuredMs,
        },
      }))
      .filter((c) => amount(c.saving, 'params') > 0 || amount(c.saving, 'macs') > 0),
  );
}

function amount(saving: Choice['saving'] | CostTotals, target: BudgetTarget): number {
  if (target === 'params') return saving.params;
  if (target === 'macs') return saving.macs;
  return saving.ms ?? 0;
}

function totalsBefore(table: SensitivityTable): CostTotals {
  const timed = table.layers.every((l) => l.measuredMs !== undefined);
  return {
    params: table.layers.reduce((s, l) => s + l.cost.params, 0),
    macs: table.layers.reduce((s, l) => s + l.cost.forwardMacs, 0),
    ms: timed ? table.layers.reduce((s, l) => s + (l.measuredMs ?? 0), 0) : null,
  };
}

function checkBudget(table: SensitivityTable, budget: Budget): Budget {
  const parsed = budgetSchema.safeParse(budget);
  if (!parsed.success) {
    throw new BudgetError(`Invalid budget ${JSON.stringify(budget)}: ${parsed.error.issues[0]?.message}`);
  }
  if (parsed.data.kind === 'reduction' && parsed.data.target === 'time' && totalsBefore(table).ms === null) {
    throw new BudgetError(
      'A time budget needs measured layer times: rescan with time measurement on, or budget params or macs.',
    );
  }
  return parsed.data;
}

function summarise(
  table: SensitivityTable,
  method: Selection['method'],
  budget: Budget,
  chosen: Candidate[],
  threshold?: number,
): Selection {
  const before = totalsBefore(table);
  const sorted = [...chosen].sort((a, b) => a.layerIndex - b.layerIndex);
  const saved = (target: BudgetTarget) => sorted.reduce((s, c) => s + amount(c.saving, target), 0);
  const after: CostTotals = {
    params: before.params - saved('params'),
    macs: before.macs - saved('macs'),
    ms: before.ms === null ? null : before.ms - saved('time'),
  };
  const reduction = {
    params: saved('params') / before.params,
    macs: saved('macs') / before.macs,
    time: before.ms === null ? null : saved('time') / before.ms,
  };
  const met =
    budget.kind === 'tolerance' ||
    saved(budget.target) >= budget.reduction * amount(before, budget.target) - 1e-9;
  return {
    method,
    budget,
    choices: sorted.map((c) => ({
      layer: c.entry.layer,
      ratio: c.entry.ratio,
      options: c.entry.options,
      drop: c.drop,
      saving: c.saving,
    })),
    before,
    after,
    reduction,
    estimatedDrop: sorted.reduce((s, c) => s + Math.max(0, c.drop), 0),
    met,
    ...(threshold === undefined ? {} : { threshold }),
  };
}

/** Drops below this count as this much, so free savings are still ranked by their size. */
const DROP_FLOOR = 1e-4;

/**
 * Greedy selection by best benefit per unit of sensitivity: starting from the dense model, repeatedly make the
 * single upgrade (a layer from its current ratio to a more compressive one) with the largest saving per unit of
 * added accuracy drop, until the budget is reached (or, for a tolerance, until no upgrade fits under it).
 * Deterministic: ties go to the larger saving, then to the earlier layer, then to the larger ratio.
 */
export function selectGreedy(table: SensitivityTable, budget: Budget): Selection {
  const checked = checkBudget(table, budget);
  const target: BudgetTarget = checked.kind === 'reduction' ? checked.target : 'params';
  const perLayer = candidates(table);
  const current: (Candidate | null)[] = perLayer.map(() => null);
  const goal =
    checked.kind === 'reduction' ? checked.reduction * amount(totalsBefore(table), target) : Infinity;
  let saved = 0;
  let drop = 0;
  while (saved < goal - 1e-9) {
    let best: { next: Candidate; gain: number; cost: number; score: number } | null = null;
    for (const [layerIndex, options] of perLayer.entries()) {
      const now = current[layerIndex] ?? null;
      const nowSaving = now ? amount(now.saving, target) : 0;
      const nowDrop = now ? Math.max(0, now.drop) : 0;
      for (const next of options) {
        const gain = amount(next.saving, target) - nowSaving;
        if (gain <= 0) continue;
        const cost = Math.max(0, next.drop) - nowDrop;
        if (checked.kind === 'tolerance' && drop + cost > checked.maxDrop + 1e-12) continue;
        const score = gain / Math.max(cost, DROP_FLOOR);
        const better =
          best === null ||
          score > best.score ||
          (score === best.score && gain > best.gain) ||
          (score === best.score && gain === best.gain && next.entry.ratio > best.next.entry.ratio);
        if (better) best = { next, gain, cost, score };
      }
    }
    if (best === null) break;
    current[best.next.layerIndex] = best.next;
    saved += best.gain;
    drop += best.cost;
  }
  return summarise(
    table,
    'greedy',
    checked,
    current.filter((c): c is Candidate => c !== null),
  );
}

/**
 * Per-layer ratio search in the manner of AIMET's compression-ratio selection: for an accepted per-layer drop t,
 * each layer takes its most compressive ratio whose calibration drop is at most t (or stays dense); a binary
 * search over the measured drops finds the smallest t that reaches the budget. With a tolerance budget, t is the
 * tolerance itself (a per-layer bound: the estimated total drop is reported beside it).
 */
export function selectPerLayer(table: SensitivityTable, budget: Budget): Selection {
  const checked = checkBudget(table, budget);
  const target: BudgetTarget = checked.kind === 'reduction' ? checked.target : 'params';
  const perLayer = candidates(table);
  const choose = (threshold: number): Candidate[] =>
    perLayer.flatMap((options) => {
      let best: Candidate | null = null;
      for (const c of options) {
        if (Math.max(0, c.drop) > threshold) continue;
        const s = amount(c.saving, target);
        if (
          best === null ||
          s > amount(best.saving, target) ||
          (s === amount(best.saving, target) && c.drop < best.drop)
        ) {
          best = c;
        }
      }
      return best ? [best] : [];
    });
  if (checked.kind === 'tolerance')
    return summarise(table, 'per-layer', checked, choose(checked.maxDrop), checked.maxDrop);

  const goal = checked.reduction * amount(totalsBefore(table), target);
  const thresholds = [...new Set([0, ...perLayer.flat().map((c) => Math.max(0, c.drop))])].sort(
    (a, b) => a - b,
  );
  const reaches = (t: number) => choose(t).reduce((s, c) => s + amount(c.saving, target), 0) >= goal - 1e-9;
  let lo = 0;
  let hi = thresholds.length - 1;
  if (!reaches(thresholds[hi] ?? 0)) {
    return summarise(table, 'per-layer', checked, choose(thresholds[hi] ?? 0), thresholds[hi]);
  }
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (reaches(thresholds[mid] ?? 0)) hi = mid;
    else lo = mid + 1;
  }
  const threshold = thresholds[lo] ?? 0;
  return summarise(table, 'per-layer', checked, choose(threshold), threshold);
}
