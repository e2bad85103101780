import path from 'node:path';
import { costTable, type LayerTiming, measureLayerTimes } from '@decompose/core';
import { checkTrainable, type EngineInfo, initEngine } from '@decompose/engine';
import { BUILT_IN_STRATEGIES, loadModel } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { InspectConfig } from './config.js';
import { describeEngine } from './engine-report.js';
import type { Console } from './progress.js';
import { formatCount, formatTable } from './table.js';

/** One layer with weights: its cost and, when measured, its times for a batch on the active backend. */
export interface InspectRow {
  name: string;
  className: string;
  /** Output shape without the batch dimension. */
  outputShape: number[];
  params: number;
  /** Multiply-adds of the forward pass, per image. */
  forwardMacs: number;
  forwardMs: number | null;
  forwardBackwardMs: number | null;
}

/** What `decompose inspect` reports (`--json` prints exactly this). */
export interface InspectReport {
  model: string;
  backend: EngineInfo['backend'];
  /** Images per timed call; null without timing. */
  timingBatch: number | null;
  rows: InspectRow[];
  /** Layers with weights whose MACs are unknown (counted as 0): their class has no cost function. */
  uncosted: string[];
  total: { params: number; forwardMacs: number; forwardMs: number | null; forwardBackwardMs: number | null };
}

function outputShapeOf(model: tfl.LayersModel, name: string): number[] {
  const shape = model.getLayer(name).outputShape;
  const single = Array.isArray(shape[0]) ? (shape[0] as (number | null)[]) : (shape as (number | null)[]);
  return single.slice(1).map((d) => d ?? -1);
}

function sumOrNull(values: (number | null)[]): number | null {
  return values.some((v) => v === null) ? null : values.reduce<number>((sum, v) => sum + (v ?? 0), 0);
}

/**
 * `decompose inspect`: every layer with weights of a saved model (or a freshly built architecture), with
 * parameters, forward MACs and, unless `timing` is off, measured forward and forward+backward times.
 */
export async function runInspect(config: InspectConfig, out: Console): Promise<InspectReport> {
  const engine = await initEngine();
  for (const line of describeEngine(engine, out.verbose)) out.log(line);
  const model = config.modelDir
    ? await loadModel(path.resolve(config.modelDir))
    : createCifarResNet({ arch: config.model, shortcut: config.shortcut, init: config.init });
  try {
    const table = costTable(model, { strategies: BUILT_IN_STRATEGIES });
    const timings = new Map<string, LayerTiming>();
    if (config.timing) {
      // Forward+backward timing differentiates every layer: one the backend cannot train fails here, named.
      checkTrainable(model);
      const bar = out.progress('timing layers', table.rows.length);
      const measured = await measureLayerTimes(model, {
        batch: config.batch,
        repeats: config.repeats,
        layers: table.rows.map((row) => row.name),
        onLayer: (_timing, done) => bar.update(done),
      });
      bar.stop();
      for (const timing of measured) timings.set(timing.name, timing);
    }
    const rows: InspectRow[] = table.rows.map((row) => ({
      name: row.name,
      className: row.className,
      outputShape: outputShapeOf(model, row.name),
      params: row.params,
      forwardMacs: row.forwardMacs,
      forwardMs: timings.get(row.name)?.forwardMs ?? null,
      forwardBackwardMs: timings.get(row.name)?.forwardBackwardMs ?? null,
    }));
    const report: InspectReport = {
      model: config.modelDir ? path.resolve(config.modelDir) : config.model,
      backend: engine.backend,
      timingBatch: config.timing ? config.batch : null,
      rows,
      uncosted: table.uncosted,
      total: {
        params: table.total.params,
        forwardMacs: table.total.forwardMacs,
        forwardMs: config.timing ? sumOrNull(rows.map((r) => r.forwardMs)) : null,
        forwardBackwardMs: config.timing ? sumOrNull(rows.map((r) => r.forwardBackwardMs)) : null,
      },
    };
    for (const line of formatInspect(report)) out.result(line);
    return report;
  } finally {
    model.dispose();
  }
}

const ms = (value: number | null) => (value === null ? '-' : value.toFixed(2));

/** The human-readable table of an inspect report. */
export function formatInspect(report: InspectReport): string[] {
  const timed = report.timingBatch === null ? '' : ` (times in ms for a batch of ${report.timingBatch})`;
  return [
    `${report.model} on ${report.backend}${timed}`,
    ...formatTable(
      [
        { heading: 'layer' },
        { heading: 'class' },
        { heading: 'output' },
        { heading: 'params', align: 'right' },
        { heading: 'MACs', align: 'right' },
        { heading: 'fwd ms', align: 'right' },
        { heading: 'fwd+bwd ms', align: 'right' },
      ],
      [
        ...report.rows.map((r) => [
          r.name,
          r.className,
          r.outputShape.join('x'),
          formatCount(r.params),
          formatCount(r.forwardMacs),
          ms(r.forwardMs),
          ms(r.forwardBackwardMs),
        ]),
        [
          'total',
          '',
          '',
          formatCount(report.total.params),
          formatCount(report.total.forwardMacs),
          ms(report.total.forwardMs),
          ms(report.total.forwardBackwardMs),
        ],
      ],
    ),
    ...(report.uncosted.length > 0
      ? [
          `MACs unknown (counted as 0) for: ${report.uncosted.join(', ')}; their layer class has no cost function`,
        ]
      : []),
  ];
}
