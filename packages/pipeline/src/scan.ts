import { createHash } from 'node:crypto';
import type { ImageSet } from '@decompose/cifar10';
import { imageShapeOf, normalizeImageSet } from '@decompose/cifar10';
import {
  type DecompositionStrategy,
  layerNameMatcher,
  listTargets,
  planStrategy,
  type TargetLayer,
  targetShape,
} from '@decompose/core';
import type { Executor, UnitOutcome } from '@decompose/jobs';
import {
  calibrationBaseline,
  type LayerBaseline,
  layerCost,
  type ScanEntry,
  type ScanProgress,
  type SensitivityTable,
  scanEntryKey,
} from '@decompose/sensitivity';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { z } from 'zod';
import { type JsonlScanCache, openScanCache } from './cache.js';
import { imagesFingerprint } from './calibration.js';
import { ScanRequestError, ScanUnitsError, StrategyMismatchError } from './errors.js';
import { packImageSet } from './image-sets.js';
import { packModel } from './models.js';
import { absoluteSpecifier } from './strategies.js';
import {
  releaseScanLayerCache,
  type ScanLayerProgress,
  scanLayer,
  type scanLayerResultSchema,
} from './units/scan-layer.js';

/** A sensitivity scan of one model with one strategy, to run as units on an executor. */
export interface ScanOnExecutorRequest {
  model: tfl.LayersModel;
  /** Plugins the model's layers come from (packed with the model; workers import them). Default none. */
  modelPlugins?: readonly string[];
  /** The strategy, resolved here (its name and version key the cache; workers must resolve the same). */
  strategy: DecompositionStrategy;
  /** How the strategy was named (built-in name, package or path); workers resolve it from this. */
  strategySpecifier: string;
  /** Layer names or globs (`*` within a dot-separated segment, `**` across); default every layer the strategy supports. */
  layers?: readonly string[];
  /** The flag or config field `layers` came from, for error messages. */
  layersField: string;
  ratios: readonly number[];
  /** Which layers are scanned at which of `ratios` (see {@link LayerRatios}); default `all`. */
  layerRatios?: LayerRatios;
  /** Strategy options besides the ratio (each entry uses `{ ...baseOptions, ratio }`); default none. */
  baseOptions?: Readonly<Record<string, unknown>>;
  /** The calibration split (held out of the training data; never the test set). */
  calibration: ImageSet;
  /** A short fine-tune of each decomposed model (SGD, constant rate) on `data` before it is measured. */
  fineTune?: { steps: number; lr: number; batch: number; data: ImageSet };
  /** Measure forward+backward time of each layer and replacement (enables time budgets). */
  timing?: { batch: number; repeats: number };
  seed: number;
  /** The JSON-lines cache file; entries already in it are not recomputed. Default none. */
  cacheFile?: string;
}

/** What {@link scanOnExecutor} tells as it goes. */
export interface ScanOnExecutorOptions {
  /** Called once the work is known: the layers, and how many entries the cache already holds. */
  onStart?: (start: { layers: readonly string[]; total: number; cached: number }) => void;
  /** After each entry (cached ones first). */
  onProgress?: (progress: ScanProgress) => void;
  signal?: AbortSignal;
}

/**
 * The layers of `model` that surgery can rewrite (core's `targetShape`: a plain channels-last `Conv2D` or a
 * `Dense` of known input size) and that `selectors` (names or globs; all when absent) match, in model order.
 *
 * @throws ScanRequestError naming `field` when a selector matches no such layer, listing the model's.
 */
export function matchLayers(
  model: tfl.LayersModel,
  selectors: readonly string[] | undefined,
  field: string,
): TargetLayer[] {
  const candidates = listTargets(model).filter((t) => targetShape(t) !== null);
  checkSelectors(
    candidates.map((t) => t.name),
    selectors,
    field,
  );
  const patterns = (selectors ?? ['**']).map(layerNameMatcher);
  return candidates.filter((t) => patterns.some((matches) => matches(t.name)));
}

/** @throws ScanRequestError when a selector matches none of `names`. */
function checkSelectors(
  names: readonly string[],
  selectors: readonly string[] | undefined,
  field: string,
): void {
  for (const s of selectors ?? []) {
    if (!names.some(layerNameMatcher(s))) {
      throw new ScanRequestError(
        field,
        `${JSON.stringify(s)} matches no layer surgery can rewrite (a convolution or a Dense); ` +
          `the model's are ${names.join(', ')}`,
      );
    }
  }
}

/**
 * Which layers a scan covers, and at which of its ratios:
 * - `all`: the layers that surgery rewrites at every ratio, each at all of them (a layer the strategy refuses
 *   at one ratio is left out);
 * - `supported`: every layer that surgery rewrites at one ratio at least, each at the ratios it is rewritten
 *   at (the table then has fewer entries for a layer that, say, would save nothing at the mildest ratio).
 */
export type LayerRatios = 'all' | 'supported';

/** A layer to scan and the ratios to scan it at (in the order of the scan's ratios). */
interface PlannedLayer {
  layer: string;
  ratios: number[];
}

/** The layers to scan and their ratios: see {@link scanLayers}. */
function planScan(
  model: tfl.LayersModel,
  strategy: DecompositionStrategy,
  ratios: readonly number[],
  baseOptions: Readonly<Record<string, unknown>>,
  selectors: readonly string[] | undefined,
  field: string,
  layerRatios: LayerRatios,
): PlannedLayer[] {
  const plans = ratios.map(
    (ratio) =>
      new Set(
        planStrategy(model, strategy, { options: { ...baseOptions, ratio } }).rewrites.map((r) => r.layer),
      ),
  );
  const targets = listTargets(model);
  const rewritable = targets
    .filter((t) => targetShape(t) !== null || plans.some((plan) => plan.has(t.name)))
    .map((t) => t.name);
  checkSelectors(rewritable, selectors, field);
  const patterns = (selectors ?? ['**']).map(layerNameMatcher);
  const chosen = targets
    .filter((t) => patterns.some((matches) => matches(t.name)))
    .map((t) => ({ layer: t.name, ratios: ratios.filter((_, i) => plans[i]!.has(t.name)) }))
    .filter((p) => (layerRatios === 'all' ? p.ratios.length === ratios.length : p.ratios.length > 0));
  if (chosen.length === 0) {
    throw new ScanRequestError(
      field,
      `${strategy.name} supports none of the selected layers at ${layerRatios === 'all' ? 'every one of ' : ''}ratios ${ratios.join(', ')}`,
    );
  }
  return chosen;
}

/**
 * The layers to scan: those that surgery would rewrite with `strategy` and `{ ...baseOptions, ratio }` at every
 * ratio (at one ratio at least with `layerRatios` `supported`; core's `planStrategy`, so a Conv1D or
 * SeparableConv2D counts when the strategy rewrites it) and that `selectors` match (all when absent), in model
 * order.
 *
 * @throws ScanRequestError when a selector matches no layer, or nothing is left to scan; the strategy's
 *   `StrategyOptionsError` when its options are invalid.
 */
export function scanLayers(
  model: tfl.LayersModel,
  strategy: DecompositionStrategy,
  ratios: readonly number[],
  baseOptions: Readonly<Record<string, unknown>>,
  selectors: readonly string[] | undefined,
  field: string,
  layerRatios: LayerRatios = 'all',
): string[] {
  return planScan(model, strategy, ratios, baseOptions, selectors, field, layerRatios).map((p) => p.layer);
}

/** A fingerprint of a model's weights: cache entries are only valid for the weights they were measured on. */
export function weightsFingerprint(model: tfl.LayersModel): string {
  const hash = createHash('sha256');
  for (const weight of model.getWeights()) {
    const data = weight.dataSync();
    hash.update(weight.shape.join('x'));
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex').slice(0, 16);
}

type LayerResult = z.output<typeof scanLayerResultSchema>;

/**
 * A sensitivity scan as `scan-layer` units (one per layer, all its ratios) on any executor: this thread, worker
 * threads, or a queue. The coordinator (this function) picks the layers and their ratios ({@link scanLayers},
 * `request.layerRatios`), measures the trained model's calibration metric once, puts the model and the images
 * as blobs once, runs one unit per layer with entries not yet in the cache, appends each finished layer's
 * entries to the JSON-lines cache, and merges one table: the same content and order as `scanSensitivity` of
 * each layer at its ratios on one thread gives (`seconds` is the wall time; `ratios` are the request's). On a queue, finished jobs are kept too, so a coordinator started again
 * re-attaches to them.
 *
 * @throws ScanRequestError for a bad layer selection; ScanUnitsError naming the layers whose units failed for
 *   good, after the others finished (and were cached); StrategyMismatchError when a worker resolved the
 *   specifier to another strategy or version.
 */
export async function scanOnExecutor(
  executor: Executor,
  request: ScanOnExecutorRequest,
  options: ScanOnExecutorOptions = {},
): Promise<SensitivityTable> {
  const started = performance.now();
  const { model, strategy, ratios, calibration, seed, fineTune, timing } = request;
  const baseOptions = request.baseOptions ?? {};
  const planned = planScan(
    model,
    strategy,
    ratios,
    baseOptions,
    request.layers,
    request.layersField,
    request.layerRatios ?? 'all',
  );
  const layers = planned.map((p) => p.layer);
  const steps = fineTune?.steps ?? 0;
  const scope = [
    weightsFingerprint(model),
    JSON.stringify(baseOptions),
    `calib${calibration.count}-${imagesFingerprint(calibration)}`,
    `seed${seed}`,
    fineTune !== undefined ? `batch${fineTune.batch}-lr${fineTune.lr}` : 'noft',
    timing !== undefined ? `timed${timing.batch}` : 'untimed',
  ].join('|');
  const cache: JsonlScanCache | null =
    request.cacheFile === undefined ? null : await openScanCache(request.cacheFile, scope);
  const key = (layer: string, ratio: number) => scanEntryKey(strategy, layer, ratio, steps);
  const cached = new Map<string, ScanEntry>();
  for (const { layer, ratios: layerRatios } of planned) {
    for (const ratio of layerRatios) {
      const hit = await cache?.get(key(layer, ratio));
      if (hit !== undefined) cached.set(key(layer, ratio), hit);
    }
  }
  const total = planned.reduce((n, p) => n + p.ratios.length, 0);
  options.onStart?.({ layers, total, cached: cached.size });
  let done = 0;
  for (const entry of cached.values()) options.onProgress?.({ done: ++done, total, entry, cached: true });

  // A layer whose entries are all cached needs no unit, unless its own time must be measured (not cached).
  const work = planned
    .map((p) => ({
      layer: p.layer,
      first: p.ratios[0]!,
      ratios: p.ratios.filter((ratio) => !cached.has(key(p.layer, ratio))),
    }))
    .filter((w) => w.ratios.length > 0 || timing !== undefined);
  const images = tf.tensor4d(normalizeImageSet(calibration), [
    calibration.count,
    ...imageShapeOf(calibration),
  ]);
  let baseline: SensitivityTable['baseline'];
  try {
    baseline = await calibrationBaseline(model, { images, labels: calibration.labels });
  } finally {
    images.dispose();
  }
  const results = new Map<string, LayerResult>();
  if (work.some((w) => w.ratios.length > 0) || timing !== undefined) {
    const modelBlob = await executor.blobs.put(await packModel(model, request.modelPlugins ?? []));
    const calibrationBlob = await executor.blobs.put(packImageSet(calibration));
    const fineTuneBlob =
      fineTune === undefined ? undefined : await executor.blobs.put(packImageSet(fineTune.data));
    const specifier = absoluteSpecifier(request.strategySpecifier);
    const units = work.map((w) =>
      scanLayer.unit({
        model: modelBlob,
        strategy: specifier,
        layer: w.layer,
        // A fully cached layer scanned only for its time still needs a ratio; its entries are dropped.
        ratios: w.ratios.length > 0 ? w.ratios : [w.first],
        baseOptions: baseOptions as Record<string, z.core.util.JSONType>,
        seed,
        calibration: calibrationBlob,
        baseline,
        ...(fineTune === undefined || fineTuneBlob === undefined
          ? {}
          : {
              fineTune: { steps: fineTune.steps, lr: fineTune.lr, batch: fineTune.batch, data: fineTuneBlob },
            }),
        ...(timing === undefined ? {} : { timing }),
        backend: tf.getBackend(),
      }),
    );
    // Cache writes go one after another, so that lines never interleave and all are written before returning.
    let stored: Promise<void> = Promise.resolve();
    let outcomes: UnitOutcome<LayerResult>[];
    try {
      outcomes = await runUnits();
    } finally {
      // Units run in this thread keep the model and images for the next scan; nothing else would free them.
      releaseScanLayerCache();
    }
    async function runUnits(): Promise<UnitOutcome<LayerResult>[]> {
      try {
        return await executor.run(units, {
          ...(options.signal === undefined ? {} : { signal: options.signal }),
          onProgress: (index, progress) => {
            const p = progress as unknown as ScanLayerProgress;
            if (typeof p !== 'object' || p.entry === undefined || work[index]!.ratios.length === 0) return;
            options.onProgress?.({ done: ++done, total, entry: p.entry, cached: false });
          },
          onResult: (index, outcome) => {
            const w = work[index]!;
            if (!outcome.ok || cache === null) return;
            const entries = w.ratios.length > 0 ? outcome.result.entries : [];
            stored = stored.then(async () => {
              for (const entry of entries) await cache.set(key(w.layer, entry.ratio), entry);
            });
          },
        });
      } finally {
        await stored.catch(() => undefined);
      }
    }
    await stored;
    const failures: { layer: string; error: { name: string; message: string } }[] = [];
    for (const [index, outcome] of outcomes.entries()) {
      const w = work[index]!;
      if (!outcome.ok) failures.push({ layer: w.layer, error: outcome.error });
      else results.set(w.layer, outcome.result);
    }
    if (failures.length > 0) throw new ScanUnitsError(failures, outcomes.length - failures.length);
    for (const [layer, result] of results) {
      const { name, version } = result.strategy;
      if (name !== strategy.name || version !== strategy.version) {
        throw new StrategyMismatchError(
          request.strategySpecifier,
          `${name}@${version}`,
          `${strategy.name}@${strategy.version}`,
          layer,
        );
      }
    }
  }

  const layerBaselines: LayerBaseline[] = planned.map(({ layer, ratios: layerRatios }) => {
    const result = results.get(layer);
    if (result !== undefined) return result.layer;
    return { layer, cost: layerCost(model, strategy, layer, { ...baseOptions, ratio: layerRatios[0] }) };
  });
  const entries: ScanEntry[] = [];
  for (const { layer, ratios: layerRatios } of planned) {
    const computed = results.get(layer)?.entries ?? [];
    for (const ratio of layerRatios) {
      const entry = cached.get(key(layer, ratio)) ?? computed.find((e) => e.ratio === ratio);
      if (entry === undefined) throw new Error(`The scan has no entry for '${layer}' at ratio ${ratio}.`);
      entries.push(entry);
    }
  }
  return {
    strategy: { name: strategy.name, version: strategy.version },
    baseline,
    ratios: [...ratios],
    layers: layerBaselines,
    entries,
    calibrationSize: calibration.count,
    fineTuneSteps: steps,
    seconds: (performance.now() - started) / 1000,
  };
}
