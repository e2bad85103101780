import { accuracyDrop, type SensitivityTable } from '@decompose/sensitivity';
import type { TopLevelSpec } from 'vega-lite';

/** Shared look: readable fonts, titles left-aligned above the plot. */
const LOOK = {
  font: 'DejaVu Sans',
  title: { fontSize: 15, anchor: 'start', offset: 12, subtitleFontSize: 12, subtitleColor: '#555' },
  axis: { labelFontSize: 12, titleFontSize: 13, titlePadding: 8, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 12, titleFontSize: 13, labelLimit: 260 },
  view: { stroke: '#cccccc' },
} as const;

/**
 * Heatmap of a sensitivity scan: one row per layer (model order), one column per ratio, colour = calibration
 * accuracy drop in percentage points (diverging around 0: red is worse than the baseline), value in each cell;
 * the `chosen` cells (a selection) are outlined.
 */
export function sensitivityHeatmapSpec(
  table: SensitivityTable,
  chosen: readonly { layer: string; ratio: number }[] = [],
): TopLevelSpec {
  const picked = new Set(chosen.map((c) => `${c.layer}|${c.ratio}`));
  const values = table.entries.map((entry) => ({
    layer: entry.layer,
    ratio: String(entry.ratio),
    drop: 100 * accuracyDrop(table, entry),
    accuracy: 100 * entry.metric.accuracy,
    chosen: picked.has(`${entry.layer}|${entry.ratio}`),
  }));
  const largest = Math.max(0.1, ...values.map((v) => Math.abs(v.drop)));
  const layers = table.layers.map((l) => l.layer);
  const ratios = table.ratios.map(String);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `Sensitivity scan: ${table.strategy.name}, one layer decomposed at a time`,
      subtitle: [
        `Each cell: calibration accuracy drop in percentage points (pp) vs the trained model`,
        `(${(100 * table.baseline.accuracy).toFixed(1)}% on ${table.calibrationSize} held-out training images)` +
          (table.fineTuneSteps > 0 ? `, after ${table.fineTuneSteps} fine-tune steps` : ', no fine-tuning') +
          '; red = worse',
        ...(picked.size > 0 ? ['Outlined: the layers and ratios the selection chose'] : []),
      ],
    },
    data: { values },
    width: Math.max(240, 80 * ratios.length),
    height: Math.max(120, 20 * layers.length),
    encoding: {
      x: {
        field: 'ratio',
        type: 'ordinal',
        sort: ratios,
        title: `${table.strategy.name} ratio (fraction kept)`,
        axis: { labelAngle: 0 },
      },
      y: { field: 'layer', type: 'ordinal', sort: layers, title: 'layer', axis: { labelLimit: 320 } },
    },
    layer: [
      {
        mark: { type: 'rect' },
        encoding: {
          color: {
            field: 'drop',
            type: 'quantitative',
            title: ['accuracy drop', '(pp)'],
            scale: { scheme: 'redblue', reverse: true, domain: [-largest, largest], domainMid: 0 },
            legend: { gradientLength: Math.max(120, Math.min(300, 20 * layers.length)) },
          },
        },
      },
      {
        transform: [{ filter: 'datum.chosen' }],
        mark: { type: 'rect', fillOpacity: 0, stroke: 'black', strokeWidth: 3 },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          text: { field: 'drop', type: 'quantitative', format: '+.1f' },
          color: {
            condition: { test: `abs(datum.drop) > ${0.6 * largest}`, value: 'white' },
            value: 'black',
          },
        },
      },
    ],
    config: LOOK,
  } as TopLevelSpec;
}

/** One model in the Pareto views. */
export interface ParetoPoint {
  name: string;
  /** Test accuracy in [0, 1]. */
  accuracy: number;
  /** What the x axis shows for this model (e.g. parameters, or ms per training image). */
  x: number;
  baseline: boolean;
}

/** The models no other model beats on both axes (lower x, higher accuracy), in x order. */
export function paretoFront(points: readonly ParetoPoint[]): ParetoPoint[] {
  const sorted = [...points].sort((a, b) => a.x - b.x || b.accuracy - a.accuracy);
  const front: ParetoPoint[] = [];
  for (const point of sorted) {
    if (front.length === 0 || point.accuracy > front[front.length - 1]!.accuracy) front.push(point);
  }
  return front;
}

/**
 * Test accuracy against a cost (x: lower is better), one labelled point per model, the baseline as a square,
 * the Pareto front as a dashed line.
 */
export function paretoSpec(
  points: readonly ParetoPoint[],
  axis: { title: string; xTitle: string; subtitle: string },
): TopLevelSpec {
  const values = points.map((p) => ({
    name: p.name,
    x: p.x,
    accuracy: 100 * p.accuracy,
    kind: p.baseline ? 'baseline' : 'compressed',
  }));
  const front = paretoFront(points).map((p) => ({ x: p.x, accuracy: 100 * p.accuracy }));
  const names = points.map((p) => p.name);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: axis.title,
      subtitle: [
        axis.subtitle,
        'Square: the baseline. Dashed: the Pareto front (nothing beats it on both axes).',
      ],
    },
    width: 520,
    height: 300,
    encoding: {
      x: { field: 'x', type: 'quantitative', title: axis.xTitle, scale: { zero: false, padding: 60 } },
      y: {
        field: 'accuracy',
        type: 'quantitative',
        title: 'test accuracy (%)',
        scale: { zero: false, padding: 16 },
      },
    },
    layer: [
      {
        data: { values: front },
        mark: { type: 'line', strokeDash: [6, 4], color: '#888888' },
      },
      {
        data: { values },
        mark: { type: 'point', filled: true, size: 140, opacity: 0.9 },
        encoding: {
          color: { field: 'name', type: 'nominal', title: 'model', scale: { domain: names } },
          shape: {
            field: 'kind',
            type: 'nominal',
            scale: { domain: ['baseline', 'compressed'], range: ['square', 'circle'] },
            legend: null,
          },
          tooltip: [{ field: 'name' }, { field: 'x' }, { field: 'accuracy' }],
        },
      },
      {
        data: { values },
        mark: { type: 'text', align: 'left', dx: 9, dy: -8, fontSize: 11 },
        encoding: { text: { field: 'name', type: 'nominal' } },
      },
    ],
    config: LOOK,
  } as TopLevelSpec;
}

/** Training curve points of one model's fine-tune. */
export interface CurvePoint {
  model: string;
  /** Optimizer step (global, from 1). */
  step: number;
  /** Running mean training loss within the epoch. */
  loss: number;
}

/** Test accuracy of one model after one fine-tune epoch (epoch 0: where fine-tuning starts). */
export interface EpochPoint {
  model: string;
  epoch: number;
  /** In [0, 1]. */
  accuracy: number;
}

/**
 * Two panels: fine-tune training loss by step, and test accuracy after each epoch; one colour per model.
 * `models` fixes the colour of each model (pass the same list to {@link paretoSpec} for matching colours).
 */
export function trainingCurvesSpec(
  steps: readonly CurvePoint[],
  epochs: readonly EpochPoint[],
  models: readonly string[],
  subtitle: string,
): TopLevelSpec {
  const color = { field: 'model', type: 'nominal', title: 'model', scale: { domain: [...models] } } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Fine-tuning after surgery (same recipe for every model)', subtitle },
    hconcat: [
      {
        title: { text: 'training loss (running mean within the epoch)', fontSize: 13 },
        data: { values: steps.map((p) => ({ ...p })) },
        width: 360,
        height: 260,
        mark: { type: 'line', strokeWidth: 2 },
        encoding: {
          x: {
            field: 'step',
            type: 'quantitative',
            title: 'optimizer step',
            axis: { tickMinStep: 1, format: 'd' },
          },
          y: { field: 'loss', type: 'quantitative', title: 'cross-entropy loss', scale: { zero: false } },
          color,
        },
      },
      {
        title: { text: 'test accuracy before fine-tuning and after each epoch', fontSize: 13 },
        data: { values: epochs.map((p) => ({ ...p, accuracy: 100 * p.accuracy })) },
        width: 300,
        height: 260,
        mark: { type: 'line', point: { size: 60, filled: true }, strokeWidth: 2 },
        encoding: {
          x: {
            field: 'epoch',
            type: 'quantitative',
            title: 'epoch (0: start of fine-tuning)',
            axis: { tickMinStep: 1, format: 'd' },
          },
          y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy (%)', scale: { zero: false } },
          color,
        },
      },
    ],
    resolve: { scale: { color: 'shared' } },
    config: LOOK,
  } as TopLevelSpec;
}
