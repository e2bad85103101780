import type { LayerCost } from '@decompose/core';
import { z } from 'zod';

/** Quality of a model on the calibration split. */
export interface Metric {
  /** Top-1 accuracy in [0, 1]. */
  accuracy: number;
  /** Mean cross-entropy loss. */
  loss: number;
}

/** The dense (undecomposed) cost of one scanned layer. */
export interface LayerBaseline {
  layer: string;
  cost: LayerCost;
  /** Measured forward+backward time of the layer in milliseconds (batch of the scan), when measured. */
  measuredMs?: number;
}

/** One cell of the scan: one layer decomposed at one ratio, everything else untouched. */
export interface ScanEntry {
  layer: string;
  ratio: number;
  /** The strategy options this ratio stood for. */
  options: unknown;
  metric: Metric;
  cost: LayerCost;
  measuredMs?: number;
  /** Strategy diagnostics, e.g. relative reconstruction error. */
  info?: Record<string, number | string>;
}

/** The result of a sensitivity scan: everything a selector needs, and what the report draws. */
export interface SensitivityTable {
  strategy: { name: string; version: string };
  baseline: Metric;
  ratios: number[];
  layers: LayerBaseline[];
  entries: ScanEntry[];
  /** Images in the calibration split the metric was measured on. */
  calibrationSize: number;
  /** Fine-tune steps after each single-layer decomposition (0: none). */
  fineTuneSteps: number;
  /** Wall-clock seconds the scan took in this run (entries from the cache cost almost nothing). */
  seconds: number;
}

const costSchema = z.object({
  params: z.number().nonnegative(),
  forwardMacs: z.number().nonnegative(),
  backwardMacs: z.number().nonnegative(),
});
const metricSchema = z.object({ accuracy: z.number().min(0).max(1), loss: z.number() });

/** zod schema of a {@link SensitivityTable}, for reading one back from JSON. */
export const sensitivityTableSchema = z.object({
  strategy: z.object({ name: z.string(), version: z.string() }),
  baseline: metricSchema,
  ratios: z.array(z.number()),
  layers: z.array(z.object({ layer: z.string(), cost: costSchema, measuredMs: z.number().optional() })),
  entries: z.array(
    z.object({
      layer: z.string(),
      ratio: z.number(),
      options: z.unknown(),
      metric: metricSchema,
      cost: costSchema,
      measuredMs: z.number().optional(),
      info: z.record(z.string(), z.union([z.number(), z.string()])).optional(),
    }),
  ),
  calibrationSize: z.number().int().nonnegative(),
  fineTuneSteps: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
}) satisfies z.ZodType<SensitivityTable>;

/** Accuracy lost by an entry relative to the baseline (positive = worse). */
export function accuracyDrop(table: SensitivityTable, entry: ScanEntry): number {
  return table.baseline.accuracy - entry.metric.accuracy;
}

/** Calibration loss gained by an entry relative to the baseline (positive = worse). */
export function lossIncrease(table: SensitivityTable, entry: ScanEntry): number {
  return entry.metric.loss - table.baseline.loss;
}

/** The table as CSV: one row per entry, with the dense cost beside the decomposed one. */
export function sensitivityCsv(table: SensitivityTable): string {
  const dense = new Map(table.layers.map((l) => [l.layer, l]));
  const header =
    'layer,ratio,accuracy,loss,accuracy_drop,loss_increase,params,dense_params,forward_macs,dense_forward_macs,measured_ms,dense_measured_ms';
  const rows = table.entries.map((e) => {
    const base = dense.get(e.layer);
    return [
      e.layer,
      e.ratio,
      e.metric.accuracy,
      e.metric.loss,
      accuracyDrop(table, e),
      lossIncrease(table, e),
      e.cost.params,
      base?.cost.params ?? '',
      e.cost.forwardMacs,
      base?.cost.forwardMacs ?? '',
      e.measuredMs ?? '',
      base?.measuredMs ?? '',
    ].join(',');
  });
  return `${[header, ...rows].join('\n')}\n`;
}
