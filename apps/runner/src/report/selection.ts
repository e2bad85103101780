import type { Budget, Selection } from '@decompose/sensitivity';
import { type Column, formatCount, formatTable } from '../table.js';
import { markdownTable } from './markdown.js';

/** A budget as the user writes it: `params:0.4`, `macs:0.4`, `time:0.3`, `drop:0.01`. */
export function formatBudget(budget: Budget): string {
  return budget.kind === 'tolerance' ? `drop:${budget.maxDrop}` : `${budget.target}:${budget.reduction}`;
}

const pp = (fraction: number) => `${(100 * fraction).toFixed(2)} pp`;
const pct = (fraction: number | null) => (fraction === null ? '-' : `${(100 * fraction).toFixed(1)}%`);

/** One line saying what a selection achieved against its budget. */
export function selectionSummary(selection: Selection): string {
  const budget =
    selection.budget.kind === 'tolerance'
      ? `accuracy drop at most ${pp(selection.budget.maxDrop)}`
      : `remove ${pct(selection.budget.reduction)} of the scanned layers' ${selection.budget.target}`;
  return (
    `${selection.method} selection for ${budget}: ${selection.choices.length} layers; removes ` +
    `${pct(selection.reduction.params)} of params, ${pct(selection.reduction.macs)} of MACs` +
    `${selection.reduction.time === null ? '' : `, ${pct(selection.reduction.time)} of measured time`} ` +
    `(of the scanned layers); estimated drop ${pp(selection.estimatedDrop)}; budget ${selection.met ? 'met' : 'NOT met'}`
  );
}

const COLUMNS: Column[] = [
  { heading: 'layer' },
  { heading: 'ratio', align: 'right' },
  { heading: 'calib. drop', align: 'right' },
  { heading: 'params saved', align: 'right' },
  { heading: 'MACs saved', align: 'right' },
  { heading: 'ms saved', align: 'right' },
];

function rows(selection: Selection): string[][] {
  return selection.choices.map((c) => [
    c.layer,
    String(c.ratio),
    pp(c.drop),
    formatCount(c.saving.params),
    formatCount(c.saving.macs),
    c.saving.ms === null ? '-' : c.saving.ms.toFixed(2),
  ]);
}

/** The explanation of a selection for the terminal: a summary line, then one row per chosen layer. */
export function formatSelection(selection: Selection): string[] {
  return [selectionSummary(selection), ...formatTable(COLUMNS, rows(selection))];
}

/** The same explanation as Markdown. */
export function selectionMarkdown(selection: Selection): string[] {
  return [
    selectionSummary(selection),
    '',
    ...(selection.choices.length === 0 ? ['(no layer chosen)'] : markdownTable(COLUMNS, rows(selection))),
  ];
}
