import { z } from 'zod';
import { SensitivityError } from './errors.js';
import { accuracyDrop, lossIncrease, type ScanEntry, type SensitivityTable } from './table.js';

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
    /**
     * Largest accepted sensitivity in the selector's metric: an absolute accuracy drop (e.g. 0.01 = one
     * percentage point), or with `metric: 'loss'` a calibration loss increase.
     */
    maxDrop: z.number().nonnegative(),
  }),
]);

/** A compression budget (remove a fraction of params/MACs/time) or a sensitivity tolerance. */
export type Budget = z.infer<typeof budgetSchema>;

/**
 * What a layer's sensitivity is measured in: the calibration accuracy drop, or the calibration loss increase
 * (a finer signal on a small calibration split, where accuracy moves in steps of 1/N and many drops tie at 0).
 */
export type SensitivityMetric = 'accuracy' | 'loss';

/** The metrics a selector accepts. */
export const SENSITIVITY_METRICS = ['accuracy', 'loss'] as const satisfies readonly SensitivityMetric[];

/** Options shared by the selectors. */
export interface SelectOptions {
  /** Sensitivity the selector ranks and bounds by; default `'accuracy'`. */
  metric?: SensitivityMetric;
}

/** One chosen layer and ratio, with what it is expected to cost and save. */
export interface Choice {
  layer: string;
  ratio: number;
  options: unknown;
  /** Calibration accuracy drop measured when only this layer was decomposed. */
  drop: number;
  /** Calibration loss increase measured when only this layer was decomposed. */
  lossIncrease: number;
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
  /** The sensitivity the selector ranked and bounded by (`threshold` and a tolerance are in its units). */
  metric: SensitivityMetric;
  /** Chosen layers in the table's layer order. */
  choices: Choice[];
  /** Dense totals of the scanned layers, and the totals after the chosen decompositions. */
  before: CostTotals;
  after: CostTotals;
  /** Achieved fraction removed (time is null when the scan measured no times). */
  reduction: { params: number; macs: number; time: number | null };
  /** Sum of the chosen entries' single-layer accuracy drops (negatives count 0): the estimated total drop. */
  estimatedDrop: number;
  /** Sum of the chosen entries' single-layer loss increases (negatives count 0). */
  estimatedLossIncrease: number;
  /** Whether the budget was reached (always true for a tolerance). */
  met: boolean;
  /** Per-layer search: the smallest accepted per-layer sensitivity (in `metric` units) that meets the budget. */
  threshold?: number;
  /**
   * Reduction budgets: the fraction of the budget's target the search (or greedy) reached before it was trimmed
   * back towards the budget; equal to the achieved one when nothing was trimmed.
   */
  untrimmedReduction?: number;
}

/** Thrown when a budget cannot be evaluated on a table (e.g. a time budget on a scan without timings). */
export class BudgetError extends SensitivityError {
  override readonly name = 'BudgetError';
}

interface Candidate {
  entry: ScanEntry;
  layerIndex: number;
  drop: number;
  lossIncrease: number;
  /** Sensitivity in the selector's metric, negatives counted as 0 (a layer never helps). */
  cost: number;
  saving: Choice['saving'];
}

function candidates(table: SensitivityTable, metric: SensitivityMetric): Candidate[][] {
  return table.layers.map((base, layerIndex) =>
    table.entries
      .filter((e) => e.layer === base.layer)
      .map((entry) => {
        const drop = accuracyDrop(table, entry);
        const increase = lossIncrease(table, entry);
        return {
          entry,
          layerIndex,
          drop,
          lossIncrease: increase,
          cost: Math.max(0, metric === 'accuracy' ? drop : increase),
          saving: {
            params: base.cost.params - entry.cost.params,
            macs: base.cost.forwardMacs - entry.cost.forwardMacs,
            ms:
              base.measuredMs === undefined || entry.measuredMs === undefined
                ? null
                : base.measuredMs - entry.measuredMs,
          },
        };
      })
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

function checkBudget(table: SensitivityTable, budget: Budget, options: SelectOptions): Budget {
  const parsed = budgetSchema.safeParse(budget);
  if (!parsed.success) {
    throw new BudgetError(`Invalid budget ${JSON.stringify(budget)}: ${parsed.error.issues[0]?.message}`);
  }
  if (options.metric !== undefined && !SENSITIVITY_METRICS.includes(options.metric)) {
    throw new BudgetError(
      `Invalid metric ${JSON.stringify(options.metric)}: expected ${SENSITIVITY_METRICS.join(' or ')}.`,
    );
  }
  if (parsed.data.kind === 'reduction' && parsed.data.target === 'time' && totalsBefore(table).ms === null) {
    throw new BudgetError(
      'A time budget needs measured layer times: rescan with time measurement on, or budget params or macs.',
    );
  }
  return parsed.data;
}

/** Savings within this much of the goal count as reaching it (float sums of measured times). */
const GOAL_EPSILON = 1e-9;
/** Sensitivities within this much of a bound count as within it (differences of measured metrics). */
const BOUND_EPSILON = 1e-12;

const savedBy = (chosen: readonly Candidate[], target: BudgetTarget) =>
  chosen.reduce((s, c) => s + amount(c.saving, target), 0);

/**
 * Brings a selection that reaches the goal back towards it: repeatedly moves one chosen layer to a less
 * compressive scanned option, or back to dense, as long as the saving still reaches the goal, taking first the
 * move that gives back the most sensitivity per unit of saving (so the layers that are cheapest in sensitivity
 * per saving are the last to go; ties: the larger saving given back, then the earlier layer, then the larger
 * ratio). A move that would raise the sensitivity (a noisy curve whose milder ratio measured worse) is never
 * made. It stops when no move keeps the goal, so the overshoot left is smaller than what any single such move
 * would give back.
 */
function trimToGoal(
  perLayer: readonly Candidate[][],
  chosen: readonly Candidate[],
  target: BudgetTarget,
  goal: number,
): Candidate[] {
  const current = new Map(chosen.map((c) => [c.layerIndex, c]));
  let saved = savedBy(chosen, target);
  for (;;) {
    let best: { layerIndex: number; next: Candidate | null; given: number; score: number } | null = null;
    for (const [layerIndex, now] of current) {
      const nowSaving = amount(now.saving, target);
      const options: (Candidate | null)[] = [...(perLayer[layerIndex] ?? []), null];
      for (const next of options) {
        const nextSaving = next ? amount(next.saving, target) : 0;
        if (next && nextSaving <= 0) continue; // dense is the better way to save nothing
        const given = nowSaving - nextSaving;
        if (given <= 0 || saved - given < goal - GOAL_EPSILON) continue;
        const relief = now.cost - (next?.cost ?? 0);
        if (relief < 0) continue;
        const score = relief / given;
        const ratio = next?.entry.ratio ?? Infinity;
        const better =
          best === null ||
          score > best.score ||
          (score === best.score &&
            (given > best.given ||
              (given === best.given &&
                (layerIndex < best.layerIndex ||
                  (layerIndex === best.layerIndex && ratio > (best.next?.entry.ratio ?? Infinity))))));
        if (better) best = { layerIndex, next, given, score };
      }
    }
    if (best === null) return [...current.values()];
    if (best.next === null) current.delete(best.layerIndex);
    else current.set(best.layerIndex, best.next);
    saved -= best.given;
  }
}

function summarise(
  table: SensitivityTable,
  method: Selection['method'],
  budget: Budget,
  metric: SensitivityMetric,
  chosen: Candidate[],
  extra: { threshold?: number; untrimmed?: Candidate[] } = {},
): Selection {
  const before = totalsBefore(table);
  const sorted = [...chosen].sort((a, b) => a.layerIndex - b.layerIndex);
  const saved = (target: BudgetTarget) => savedBy(sorted, target);
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
    saved(budget.target) >= budget.reduction * amount(before, budget.target) - GOAL_EPSILON;
  const untrimmedReduction =
    budget.kind === 'reduction' && extra.untrimmed !== undefined
      ? savedBy(extra.untrimmed, budget.target) / amount(before, budget.target)
      : undefined;
  return {
    method,
    budget,
    metric,
    choices: sorted.map((c) => ({
      layer: c.entry.layer,
      ratio: c.entry.ratio,
      options: c.entry.options,
      drop: c.drop,
      lossIncrease: c.lossIncrease,
      saving: c.saving,
    })),
    before,
    after,
    reduction,
    estimatedDrop: sorted.reduce((s, c) => s + Math.max(0, c.drop), 0),
    estimatedLossIncrease: sorted.reduce((s, c) => s + Math.max(0, c.lossIncrease), 0),
    met,
    ...(extra.threshold === undefined ? {} : { threshold: extra.threshold }),
    ...(untrimmedReduction === undefined ? {} : { untrimmedReduction }),
  };
}

/** Sensitivities below this count as this much, so free savings are still ranked by their size. */
const DROP_FLOOR = 1e-4;

/**
 * Greedy selection by best benefit per unit of sensitivity: starting from the dense model, repeatedly make the
 * single upgrade (a layer from its current ratio to a more compressive one) with the largest saving per unit of
 * added sensitivity (`options.metric`: accuracy drop or loss increase), until the budget is reached (or, for a
 * tolerance, until no upgrade fits under it). The last upgrade can overshoot a reduction budget, so the result
 * is then trimmed back towards it (see {@link selectPerLayer}).
 * Deterministic: ties go to the larger saving, then to the earlier layer, then to the larger ratio.
 */
export function selectGreedy(
  table: SensitivityTable,
  budget: Budget,
  options: SelectOptions = {},
): Selection {
  const checked = checkBudget(table, budget, options);
  const metric = options.metric ?? 'accuracy';
  const target: BudgetTarget = checked.kind === 'reduction' ? checked.target : 'params';
  const perLayer = candidates(table, metric);
  const current: (Candidate | null)[] = perLayer.map(() => null);
  const goal =
    checked.kind === 'reduction' ? checked.reduction * amount(totalsBefore(table), target) : Infinity;
  let saved = 0;
  let sensitivity = 0;
  while (saved < goal - GOAL_EPSILON) {
    let best: { next: Candidate; gain: number; cost: number; score: number } | null = null;
    for (const [layerIndex, options] of perLayer.entries()) {
      const now = current[layerIndex] ?? null;
      const nowSaving = now ? amount(now.saving, target) : 0;
      const nowCost = now?.cost ?? 0;
      for (const next of options) {
        const gain = amount(next.saving, target) - nowSaving;
        if (gain <= 0) continue;
        const cost = next.cost - nowCost;
        if (checked.kind === 'tolerance' && sensitivity + cost > checked.maxDrop + BOUND_EPSILON) continue;
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
    sensitivity += best.cost;
  }
  const chosen = current.filter((c): c is Candidate => c !== null);
  if (checked.kind === 'tolerance' || saved < goal - GOAL_EPSILON)
    return summarise(table, 'greedy', checked, metric, chosen);
  const trimmed = trimToGoal(perLayer, chosen, target, goal);
  return summarise(table, 'greedy', checked, metric, trimmed, { untrimmed: chosen });
}

/**
 * Per-layer ratio search in the manner of AIMET's compression-ratio selection: for an accepted per-layer
 * sensitivity t (`options.metric`: accuracy drop or loss increase), each layer takes its most compressive ratio
 * whose calibration sensitivity is at most t (or stays dense); a binary search over the measured sensitivities
 * finds the smallest t that reaches a reduction budget. That choice can remove far more than asked (at t, every
 * layer whose curve stays under t takes its most compressive ratio), so it is then trimmed back: layers move to
 * milder ratios or back to dense, those giving back the most sensitivity per unit of saving first, while the
 * budget is still met; what is left overshoots by less than any single such move would give back.
 * With a tolerance budget, t is the tolerance itself (a per-layer bound; the estimated totals are reported).
 * Deterministic.
 */
export function selectPerLayer(
  table: SensitivityTable,
  budget: Budget,
  options: SelectOptions = {},
): Selection {
  const checked = checkBudget(table, budget, options);
  const metric = options.metric ?? 'accuracy';
  const target: BudgetTarget = checked.kind === 'reduction' ? checked.target : 'params';
  const perLayer = candidates(table, metric);
  const choose = (threshold: number): Candidate[] =>
    perLayer.flatMap((options) => {
      let best: Candidate | null = null;
      for (const c of options) {
        const s = amount(c.saving, target);
        // A ratio that saves nothing of the target (e.g. measured slower than dense) is never worth taking.
        if (c.cost > threshold + BOUND_EPSILON || s <= 0) continue;
        if (
          best === null ||
          s > amount(best.saving, target) ||
          (s === amount(best.saving, target) && c.cost < best.cost)
        ) {
          best = c;
        }
      }
      return best ? [best] : [];
    });
  if (checked.kind === 'tolerance')
    return summarise(table, 'per-layer', checked, metric, choose(checked.maxDrop), {
      threshold: checked.maxDrop,
    });

  const goal = checked.reduction * amount(totalsBefore(table), target);
  const thresholds = [...new Set([0, ...perLayer.flat().map((c) => c.cost)])].sort((a, b) => a - b);
  const reaches = (t: number) => savedBy(choose(t), target) >= goal - GOAL_EPSILON;
  let lo = 0;
  let hi = thresholds.length - 1;
  const largest = thresholds[hi] ?? 0;
  if (!reaches(largest)) {
    return summarise(table, 'per-layer', checked, metric, choose(largest), { threshold: largest });
  }
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (reaches(thresholds[mid] ?? 0)) hi = mid;
    else lo = mid + 1;
  }
  const threshold = thresholds[lo] ?? 0;
  const searched = choose(threshold);
  return summarise(table, 'per-layer', checked, metric, trimToGoal(perLayer, searched, target, goal), {
    threshold,
    untrimmed: searched,
  });
}
