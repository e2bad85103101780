import { createHash } from 'node:crypto';
import { type Cifar10Images, imageShapeOf, normalizeImageSet, selectImages } from '@decompose/cifar10';
import {
  type DecompositionStrategy,
  layerNameMatcher,
  listTargets,
  measureLayerTimes,
  parseStrategyOptions,
  type TargetLayer,
  targetShape,
} from '@decompose/core';
import { imagesFingerprint } from '@decompose/pipeline';
import { type ScanProgress, type SensitivityTable, scanSensitivity } from '@decompose/sensitivity';
import { modelGeometry, train } from '@decompose/train';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ConfigError } from '../errors.js';
import type { Console } from '../progress.js';
import { percent } from '../train.js';
import { openScanCache } from './cache.js';
import { scanInWorkers } from './parallel.js';

/** Everything a scan of one model with one strategy needs. */
export interface ScanRequest {
  model: tfl.LayersModel;
  strategy: DecompositionStrategy;
  /** How the strategy was named (built-in name, package or path); worker threads resolve it from this. */
  strategySpecifier: string;
  /** Plugins the model's layers come from (worker threads import them before rebuilding it); default none. */
  modelPlugins?: readonly string[];
  /** Layer names or globs (`*` within a dot-separated segment, `**` across); default every layer the strategy supports. */
  layers?: readonly string[];
  ratios: readonly number[];
  /** Strategy options besides the ratio (each entry uses `{ ...baseOptions, ratio }`); default none. */
  baseOptions?: Readonly<Record<string, unknown>>;
  /** The calibration split (held out of the training data; never the test set). */
  calibration: Cifar10Images;
  /** Training images for the optional short fine-tune of each entry (the rest of the training split). */
  fineTuneData: Cifar10Images;
  fineTuneSteps: number;
  fineTuneLr: number;
  measureTime: boolean;
  batch: number;
  seed: number;
  /** The JSON-lines cache; entries already in it are not recomputed. */
  cacheFile: string;
  /** Field name the layers came from, for error messages. */
  layersField: string;
  /**
   * Worker threads to scan on, layers split between them (see {@link scanInWorkers}); 0 or 1: this thread, as
   * is any scan with `fineTuneSteps` or `measureTime` (a fine-tune or a timing would compete with the others
   * for the cores). Default 0.
   */
  workers?: number;
}

/**
 * The layers of `model` that surgery can rewrite (core's `targetShape`: a plain channels-last `Conv2D` or a
 * `Dense` of known input size, what `applyStrategy` rewrites by default) and that `selectors` (names or globs;
 * all when absent) match, in model order.
 *
 * @throws ConfigError naming `field` when a selector matches no such layer, listing the model's.
 */
export function matchLayers(
  model: tfl.LayersModel,
  selectors: readonly string[] | undefined,
  field: string,
): TargetLayer[] {
  const candidates = listTargets(model).filter((t) => targetShape(t) !== null);
  const names = candidates.map((t) => t.name);
  const patterns = (selectors ?? ['**']).map((s) => ({ s, matches: layerNameMatcher(s) }));
  for (const { s, matches } of patterns) {
    if (!names.some(matches)) {
      throw new ConfigError([
        `${field}: ${JSON.stringify(s)} matches no layer surgery can rewrite (a Conv2D or a Dense); ` +
          `the model's are ${names.join(', ')}`,
      ]);
    }
  }
  return candidates.filter((t) => patterns.some(({ matches }) => matches(t.name)));
}

/**
 * The layers to scan: those {@link matchLayers} gives for `selectors` (every convolution and Dense layer when
 * absent) that the strategy supports with `baseOptions` at every ratio, in model order.
 *
 * @throws ConfigError when a selector matches no layer, or nothing is left to scan; the strategy's
 *   `StrategyOptionsError` when its options are invalid.
 */
export function scanLayers(
  model: tfl.LayersModel,
  strategy: DecompositionStrategy,
  ratios: readonly number[],
  baseOptions: Readonly<Record<string, unknown>>,
  selectors: readonly string[] | undefined,
  field: string,
): string[] {
  const options = ratios.map((ratio) => parseStrategyOptions(strategy, { ...baseOptions, ratio }));
  const chosen = matchLayers(model, selectors, field)
    .filter((t) => options.every((o) => strategy.supports(t, o).ok))
    .map((t) => t.name);
  if (chosen.length === 0) {
    throw new ConfigError([
      `${field}: ${strategy.name} supports none of the selected layers at ratios ${ratios.join(', ')}`,
    ]);
  }
  return chosen;
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

/**
 * Worker threads a scan of `layers` layers runs on: `workers`, at most one per layer, and 0 (this thread) when
 * fewer than 2 would be used or the scan fine-tunes or times its entries.
 */
export function scanWorkerCount(
  settings: Pick<ScanRequest, 'workers' | 'fineTuneSteps' | 'measureTime'>,
  layers: number,
): number {
  if (settings.fineTuneSteps > 0 || settings.measureTime) return 0;
  const workers = Math.min(settings.workers ?? 0, layers);
  return workers >= 2 ? workers : 0;
}

const TIMING_BATCH = 32;
const TIMING_REPEATS = 3;

/**
 * Runs a sensitivity scan with a progress bar, resuming from the JSON-lines cache, and returns its table.
 * Each entry is evaluated on the calibration split (by the scan itself, from the activations in front of the
 * decomposed layer, BatchNorms folded); with `fineTuneSteps` > 0 each decomposed model first trains that many
 * SGD steps (constant `fineTuneLr`) on the training images, and is evaluated whole. With `workers` ≥ 2 (and
 * neither fine-tune nor timing) the layers are split over that many worker threads; the table is the same.
 */
export async function runScan(request: ScanRequest, out: Console): Promise<SensitivityTable> {
  const { model, strategy, ratios, calibration, batch, seed } = request;
  // A model built for other images fails here, naming both shapes, not inside a tfjs reshape.
  modelGeometry(model, calibration);
  const baseOptions = request.baseOptions ?? {};
  const layers = scanLayers(model, strategy, ratios, baseOptions, request.layers, request.layersField);
  const scope = [
    weightsFingerprint(model),
    JSON.stringify(baseOptions),
    `calib${calibration.count}-${imagesFingerprint(calibration)}`,
    `seed${seed}`,
    request.fineTuneSteps > 0 ? `batch${batch}-lr${request.fineTuneLr}` : 'noft',
    request.measureTime ? `timed${TIMING_BATCH}` : 'untimed',
  ].join('|');
  const cache = await openScanCache(request.cacheFile, scope);
  const total = layers.length * ratios.length;
  const workers = scanWorkerCount(request, layers.length);
  if ((request.fineTuneSteps > 0 || request.measureTime) && (request.workers ?? 0) >= 2) {
    out.log('scanning on this thread: fine-tune steps and timing are not split over worker threads');
  }
  out.log(
    `scanning ${layers.length} layers x ${ratios.length} ratios with ${strategy.name} on ${calibration.count} calibration images` +
      `${workers > 0 ? ` in ${workers} worker threads` : ' on this thread'}` +
      `${cache.loaded > 0 ? ` (${cache.loaded} entries cached in ${request.cacheFile})` : ''}`,
  );
  const fineTuneImages = Math.min(request.fineTuneData.count, request.fineTuneSteps * batch);
  const fineTuneData = selectImages(
    request.fineTuneData,
    Uint32Array.from({ length: fineTuneImages }, (_, i) => i),
  );
  const bar = out.progress(`scan ${strategy.name}`, total);
  const onProgress = ({ done, entry, cached }: ScanProgress) =>
    bar.update(
      done,
      `${entry.layer} @ ${entry.ratio}: calib acc ${percent(entry.metric.accuracy)}${cached ? ' (cached)' : ''}`,
    );
  const normalized = normalizeImageSet(calibration);
  const imageShape = [calibration.count, ...imageShapeOf(calibration)] as const;
  if (workers > 0) {
    try {
      return await scanInWorkers({
        model,
        strategy,
        strategySpecifier: request.strategySpecifier,
        modelPlugins: request.modelPlugins ?? [],
        layers,
        ratios,
        baseOptions,
        seed,
        images: normalized,
        imageShape,
        labels: calibration.labels,
        cache,
        workers,
        onProgress,
      });
    } finally {
      bar.stop();
    }
  }
  const images = tf.tensor4d(normalized, [...imageShape]);
  try {
    return await scanSensitivity({
      model,
      strategy,
      layers,
      ratios,
      optionsForRatio: (ratio) => ({ ...baseOptions, ratio }),
      seed,
      calibration: { images, labels: calibration.labels },
      ...(request.fineTuneSteps > 0
        ? {
            fineTune: {
              steps: request.fineTuneSteps,
              run: async (m: tfl.LayersModel) => {
                await train({
                  model: m,
                  trainData: fineTuneData,
                  epochs: 1,
                  batchSize: batch,
                  seed,
                  schedule: { type: 'constant', lr: request.fineTuneLr },
                  optimizer: { momentum: 0.9, weightDecay: 5e-4 },
                });
              },
            },
          }
        : {}),
      ...(request.measureTime
        ? {
            measureLayers: async (m: tfl.LayersModel, names: readonly string[]) =>
              (
                await measureLayerTimes(m, { layers: names, batch: TIMING_BATCH, repeats: TIMING_REPEATS })
              ).map((t) => t.forwardBackwardMs ?? t.forwardMs),
          }
        : {}),
      cache,
      onProgress,
    });
  } finally {
    images.dispose();
    bar.stop();
  }
}
