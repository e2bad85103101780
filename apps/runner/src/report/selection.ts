import type { Budget, Selection, SensitivityMetric } from '@decompose/sensitivity';
import { type Column, formatCount, formatTable } from '../table.js';
import { markdownTable } from './markdown.js';

/** A budget as the user writes it: `params:0.4`, `macs:0.4`, `time:0.3`, `drop:0.01`. */
export function formatBudget(budget: Budget): string {
  return budget.kind === 'tolerance' ? `drop:${budget.maxDrop}` : `${budget.target}:${budget.reduction}`;
}

const pct = (fraction: number | null) => (fraction === null ? '-' : `${(100 * fraction).toFixed(1)}%`);

/** What a sensitivity metric is called, and how its values are written (accuracy in percentage points). */
export function metricWording(metric: SensitivityMetric): {
  name: string;
  format: (value: number) => string;
} {
  return metric === 'accuracy'
    ? { name: 'accuracy drop', format: (x) => `${(100 * x).toFixed(2)} pp` }
    : { name: 'loss increase', format: (x) => x.toPrecision(3) };
}

/** A chosen layer's or the whole selection's sensitivity in the selection's metric. */
function sensitivity(selection: Selection, of: { drop: number; lossIncrease: number }): string {
  return metricWording(selection.metric).format(selection.metric === 'accuracy' ? of.drop : of.lossIncrease);
}

/** One line saying what a selection achieved against its budget. */
export function selectionSummary(selection: Selection): string {
  const { name, format } = metricWording(selection.metric);
  const budget =
    selection.budget.kind === 'tolerance'
      ? `${name} at most ${format(selection.budget.maxDrop)}`
      : `remove ${pct(selection.budget.reduction)} of the scanned layers' ${selection.budget.target}`;
  const estimate = { drop: selection.estimatedDrop, lossIncrease: selection.estimatedLossIncrease };
  return (
    `${selection.method} selection for ${budget}: ${selection.choices.length} layers; removes ` +
    `${pct(selection.reduction.params)} of params, ${pct(selection.reduction.macs)} of MACs` +
    `${selection.reduction.time === null ? '' : `, ${pct(selection.reduction.time)} of measured time`} ` +
    `(of the scanned layers); estimated ${name} ${sensitivity(selection, estimate)}; budget ${selection.met ? 'met' : 'NOT met'}`
  );
}

function columns(selection: Selection): Column[] {
  return [
    { heading: 'layer' },
    { heading: 'ratio', align: 'right' },
    { heading: selection.metric === 'accuracy' ? 'calib. drop' : 'calib. loss +', align: 'right' },
    { heading: 'params saved', align: 'right' },
    { heading: 'MACs saved', align: 'right' },
    { heading: 'ms saved', align: 'right' },
  ];
}

function rows(selection: Selection): string[][] {
  return selection.choices.map((c) => [
    c.layer,
    String(c.ratio),
    sensitivity(selection, c),
    formatCount(c.saving.params),
    formatCount(c.saving.macs),
    c.saving.ms === null ? '-' : c.saving.ms.toFixed(2),
  ]);
}

/** The explanation of a selection for the terminal: a summary line, then one row per chosen layer. */
export function formatSelection(selection: Selection): string[] {
  return [selectionSummary(selection), ...formatTable(columns(selection), rows(selection))];
}

/** The same explanation as Markdown. */
export function selectionMarkdown(selection: Selection): string[] {
  return [
    selectionSummary(selection),
    '',
    ...(selection.choices.length === 0
      ? ['(no layer chosen)']
      : markdownTable(columns(selection), rows(selection))),
  ];
}
