import { applyStrategy, type DecompositionStrategy, graphOf, planStrategy } from '@decompose/core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { CalibrationEvaluator, type LabelledImages } from './calibration.js';
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

/** What every scan takes, however it evaluates. */
interface ScanSettings<Options> {
  /** The trained model; it is never modified. */
  model: LayersModel;
  strategy: DecompositionStrategy<Options>;
  /** Candidate layers, by name (in graph order, the calibration path reuses the most activations). */
  layers: readonly string[];
  /** Ratios to try for each layer. */
  ratios: readonly number[];
  /** Strategy options a ratio stands for; default `{ ratio }`, which every built-in strategy accepts. */
  optionsForRatio?: (ratio: number) => unknown;
  /**
   * Optional short fine-tune of each decomposed model before it is evaluated. It trains the whole model, so
   * with `calibration` such an entry is evaluated on the whole model from the images, not from the layer's
   * frontier.
   */
  fineTune?: { steps: number; run: (model: LayersModel) => Promise<void> };
  /** Optional measured forward+backward time (ms) of named layers of a model; enables time budgets. */
  measureLayers?: (model: LayersModel, layers: readonly string[]) => Promise<number[]>;
  cache?: ScanCache;
  onProgress?: (progress: ScanProgress) => void;
  /** Seed handed to the strategy; default 0. */
  seed?: number;
  /**
   * The trained model's metric on the calibration split, when the caller already has it (a scan split into
   * units, one per layer, measures it once for all of them): the scan then does not evaluate the whole model.
   */
  baseline?: Metric;
}

/**
 * A scan's options. It measures the metric either itself, on a labelled `calibration` split (fast: see
 * {@link scanSensitivity}), or through an `evaluate` callback that gets each whole decomposed model.
 */
export type ScanOptions<Options> = ScanSettings<Options> &
  (
    | {
        /** The calibration split (never the test set), which the scan evaluates every model on itself. */
        calibration: LabelledImages;
        evaluate?: undefined;
        /** Images the metric is computed on; default the split's size. */
        calibrationSize?: number;
      }
    | {
        calibration?: undefined;
        /** Metric of a whole model on the calibration split (never the test set). */
        evaluate: (model: LayersModel) => Promise<Metric>;
        /** Images the metric is computed on (recorded in the table). */
        calibrationSize: number;
      }
  );

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
 *
 * With `calibration` the scan computes accuracy and mean cross-entropy itself, and re-runs only what a
 * decomposition changes: decomposing layer L leaves every tensor outside the part of the network downstream
 * of L as it was, so the tensors in front of that part (L's input, and in a residual block the skip tensor)
 * are computed once per layer with the trained model, and each ratio's model runs from them, only its part
 * downstream of L. Every model runs on the eval path (core's `inferenceModel`: BatchNorms folded into the
 * layers before them, decomposed ones included, activations fused). Both change the metric only by float rounding (below
 * 1e-4). An entry with `fineTune` trains the whole model, so it is evaluated whole, from the images.
 *
 * `model` may be a `tf.sequential` or a functional model; a sequential one is scanned (and handed to `evaluate`
 * for the baseline) as the functional view of its graph, `graphOf(model)`.
 */
export async function scanSensitivity<Options>(options: ScanOptions<Options>): Promise<SensitivityTable> {
  // A `tf.sequential` model is scanned through the functional view of its graph (same layers and weights).
  options = { ...options, model: graphOf(options.model) };
  const evaluator = options.calibration ? new CalibrationEvaluator(options.model, options.calibration) : null;
  try {
    return await scan(options, evaluator);
  } finally {
    evaluator?.dispose();
  }
}

/**
 * The cost of `layer` as surgery reports it (`before` of its replacement): through core's `planStrategy`, so
 * a Dense layer is costed as the 1×1 convolution it equals, and a Conv1D or SeparableConv2D as what surgery
 * sees in it.
 *
 * @throws TypeError when surgery would not rewrite the layer with these options.
 */
export function layerCost<Options>(
  model: LayersModel,
  strategy: DecompositionStrategy<Options>,
  layer: string,
  options: unknown,
): LayerBaseline['cost'] {
  const planned = planStrategy(model, strategy, { layers: [layer], options }).rewrites[0];
  if (planned === undefined)
    throw new TypeError(
      `Surgery would not rewrite layer '${layer}' with ${strategy.name}; scan only layers it rewrites.`,
    );
  return planned.before;
}

/**
 * The trained model's metric on a calibration split, computed as {@link scanSensitivity} computes its
 * baseline (BatchNorms folded, the functional view of a sequential model), so it can be handed to several
 * scans as their `baseline`.
 */
export async function calibrationBaseline(model: LayersModel, split: LabelledImages): Promise<Metric> {
  const graph = graphOf(model);
  const evaluator = new CalibrationEvaluator(graph, split);
  try {
    return await evaluator.metric(graph, false);
  } finally {
    evaluator.dispose();
  }
}

/** The scan, measuring with `evaluator` when there is one, else with the `evaluate` callback. */
async function scan<Options>(
  options: ScanOptions<Options>,
  evaluator: CalibrationEvaluator | null,
): Promise<SensitivityTable> {
  const { model, strategy, ratios } = options;
  const optionsForRatio = options.optionsForRatio ?? ((ratio: number) => ({ ratio }));
  const steps = options.fineTune?.steps ?? 0;
  const seed = options.seed ?? 0;
  const started = performance.now();
  const callback = options.evaluate;
  // A fine-tune trains the whole model, so the tensors in front of the decomposed layer change too.
  const fromFrontier = evaluator !== null && options.fineTune === undefined;
  const evaluate = (m: LayersModel, atLayer: boolean): Promise<Metric> =>
    callback ? callback(m) : evaluator!.metric(m, atLayer);

  const baseline = options.baseline ?? (await evaluate(model, false));
  const denseTimes = options.measureLayers ? await options.measureLayers(model, options.layers) : undefined;
  const layers: LayerBaseline[] = options.layers.map((name, i) => {
    const time = denseTimes?.[i];
    return {
      layer: name,
      cost: layerCost(model, strategy, name, optionsForRatio(ratios[0] ?? 1)),
      ...(time === undefined ? {} : { measuredMs: time }),
    };
  });

  const entries: ScanEntry[] = [];
  const total = layers.length * ratios.length;
  for (const { layer } of layers) {
    let atLayer = false; // whether the evaluator holds the tensors in front of this layer yet
    for (const ratio of ratios) {
      const key = scanEntryKey(strategy, layer, ratio, steps);
      const hit = await options.cache?.get(key);
      if (hit) {
        entries.push(hit);
        options.onProgress?.({ done: entries.length, total, entry: hit, cached: true });
        continue;
      }
      // Computed once for all the layer's ratios, and only when one of them is not cached.
      if (fromFrontier && !atLayer) {
        await evaluator!.moveTo(layer);
        atLayer = true;
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
        const metric = await evaluate(surgery.model, fromFrontier);
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
    calibrationSize: options.calibrationSize ?? evaluator?.count ?? 0,
    fineTuneSteps: steps,
    seconds: (performance.now() - started) / 1000,
  };
}
