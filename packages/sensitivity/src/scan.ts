import { applyStrategy, convCost, type DecompositionStrategy, describeLayer } from '@decompose/core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { LayerBaseline, Metric, ScanEntry, SensitivityTable } from './table.js';

/** Where finished scan entries are kept so an interrupted scan resumes without redoing them. */
export interface ScanCache {
  get(key: string): ScanEntry | undefined | Promise<ScanEntry | undefined>;
  set(key: string, entry: ScanEntry): void | Promise<void>;
}

/** Progress of a scan, after each entry. */
export interface ScanProgress {
  done: number;
  total: number;
  entry: ScanEntry;
  /** True when the entry came from the cache. */
  cached: boolean;
}

export interface ScanOptions<Options> {
  /** The trained model; it is never modified. */
  model: LayersModel;
  strategy: DecompositionStrategy<Options>;
  /** Candidate layers, by name. */
  layers: readonly string[];
  /** Ratios to try for each layer. */
  ratios: readonly number[];
  /** Strategy options a ratio stands for; default `{ ratio }`, which every built-in strategy accepts. */
  optionsForRatio?: (ratio: number) => unknown;
  /** Metric of a model on the calibration split (never the test set). */
  evaluate: (model: LayersModel) => Promise<Metric>;
  /** Images the metric is computed on (recorded in the table). */
  calibrationSize: number;
  /** Optional short fine-tune of each decomposed model before it is evaluated. */
  fineTune?: { steps: number; run: (model: LayersModel) => Promise<void> };
  /** Optional measured forward+backward time (ms) of named layers of a model; enables time budgets. */
  measureLayers?: (model: LayersModel, layers: readonly string[]) => Promise<number[]>;
  cache?: ScanCache;
  onProgress?: (progress: ScanProgress) => void;
  /** Seed handed to the strategy; default 0. */
  seed?: number;
}

/** Cache key of one entry: strategy, version, layer, ratio, fine-tune steps. */
export function scanEntryKey(
  strategy: { name: string; version: string },
  layer: string,
  ratio: number,
  steps: number,
) {
  return `${strategy.name}@${strategy.version}|${layer}|${ratio}|ft${steps}`;
}

/**
 * Layer-wise sensitivity scan: for each candidate layer and ratio, decompose only that layer of the trained
 * model (through the strategy interface, so any strategy works), optionally fine-tune briefly, and measure the
 * calibration metric and the cost. Entries found in the cache are not recomputed.
 */
export async function scanSensitivity<Options>(options: ScanOptions<Options>): Promise<SensitivityTable> {
  const { model, strategy, ratios } = options;
  const optionsForRatio = options.optionsForRatio ?? ((ratio: number) => ({ ratio }));
  const steps = options.fineTune?.steps ?? 0;
  const seed = options.seed ?? 0;
  const started = performance.now();

  const baseline = await options.evaluate(model);
  const denseTimes = options.measureLayers ? await options.measureLayers(model, options.layers) : undefined;
  const layers: LayerBaseline[] = options.layers.map((name, i) => {
    const target = describeLayer(model, name);
    if (target.conv === null)
      throw new TypeError(`Layer '${name}' is not a convolution; scan only conv layers.`);
    const time = denseTimes?.[i];
    return { layer: name, cost: convCost(target.conv), ...(time === undefined ? {} : { measuredMs: time }) };
  });

  const entries: ScanEntry[] = [];
  const total = layers.length * ratios.length;
  for (const { layer } of layers) {
    for (const ratio of ratios) {
      const key = scanEntryKey(strategy, layer, ratio, steps);
      const hit = await options.cache?.get(key);
      if (hit) {
        entries.push(hit);
        options.onProgress?.({ done: entries.length, total, entry: hit, cached: true });
        continue;
      }
      const raw = optionsForRatio(ratio);
      const surgery = applyStrategy(model, strategy, {
        layers: [layer],
        options: raw,
        init: 'trained',
        seed,
      });
      try {
        if (options.fineTune) await options.fineTune.run(surgery.model);
        const metric = await options.evaluate(surgery.model);
        const replaced = surgery.report[0];
        if (replaced === undefined) throw new Error(`Surgery replaced nothing for layer '${layer}'.`);
        const time = options.measureLayers
          ? (await options.measureLayers(surgery.model, replaced.replacements)).reduce((s, t) => s + t, 0)
          : undefined;
        const entry: ScanEntry = {
          layer,
          ratio,
          options: replaced.options,
          metric,
          cost: replaced.after,
          ...(time === undefined ? {} : { measuredMs: time }),
          ...(replaced.info ? { info: replaced.info } : {}),
        };
        await options.cache?.set(key, entry);
        entries.push(entry);
        options.onProgress?.({ done: entries.length, total, entry, cached: false });
      } finally {
        surgery.model.dispose();
      }
    }
  }
  return {
    strategy: { name: strategy.name, version: strategy.version },
    baseline,
    ratios: [...ratios],
    layers,
    entries,
    calibrationSize: options.calibrationSize,
    fineTuneSteps: steps,
    seconds: (performance.now() - started) / 1000,
  };
}
