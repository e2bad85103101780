import { type Budget, budgetSchema } from '@decompose/sensitivity';
import { z } from 'zod';

const BUDGET_FORM =
  "expected 'params:F', 'macs:F' or 'time:F' (remove fraction F in (0, 1)) or 'drop:D' (largest sensitivity D ≥ 0: accuracy drop, or loss increase with metric loss)";

function budgetFromText(text: string): unknown {
  const match = /^\s*(params|macs|time|drop)\s*:\s*(\S+)\s*$/.exec(text);
  if (match === null) return undefined;
  const value = Number(match[2]);
  return match[1] === 'drop'
    ? { kind: 'tolerance', maxDrop: value }
    : { kind: 'reduction', target: match[1], reduction: value };
}

/**
 * A budget given as text (`params:0.4`, `macs:0.4`, `time:0.3`: the fraction of the scanned layers' cost to
 * remove; `drop:0.01`: the largest accepted sensitivity, an accuracy drop or with metric loss a loss increase) or
 * as the sensitivity package's object form.
 */
export const budgetFieldSchema = z.unknown().transform((value, ctx): Budget => {
  const parsed = budgetSchema.safeParse(typeof value === 'string' ? budgetFromText(value) : value);
  if (parsed.success) return parsed.data;
  ctx.addIssue({ code: 'custom', message: BUDGET_FORM });
  return z.NEVER;
});

const RATIO_FORM = 'each ratio must be in (0, 1]; expected e.g. 0.25,0.5,0.75';

/** Ratios as a list of numbers in (0, 1], or their comma-separated text (`0.25,0.5,0.75`). */
export const ratiosFieldSchema = z.unknown().transform((value, ctx): number[] => {
  const ratios =
    typeof value === 'string'
      ? value.split(',').map((s) => (s.trim() === '' ? Number.NaN : Number(s)))
      : value;
  const valid =
    Array.isArray(ratios) &&
    ratios.length > 0 &&
    ratios.every((r) => typeof r === 'number' && r > 0 && r <= 1);
  if (valid) return ratios as number[];
  ctx.addIssue({ code: 'custom', message: RATIO_FORM });
  return z.NEVER;
});
