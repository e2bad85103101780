import type { Cifar10Images } from '@decompose/cifar10';
import { selectImages } from '@decompose/cifar10';
import type { DecompositionStrategy } from '@decompose/core';
import { scanLayers, scanOnExecutor } from '@decompose/pipeline';
import type { SensitivityTable } from '@decompose/sensitivity';
import { modelGeometry } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { openExecutor, type QueueAddress } from '../executor.js';
import type { Console } from '../progress.js';
import { percent } from '../train.js';

export { matchLayers, scanLayers, weightsFingerprint } from '@decompose/pipeline';

/** Everything a scan of one model with one strategy needs. */
export interface ScanRequest {
  model: tfl.LayersModel;
  strategy: DecompositionStrategy;
  /** How the strategy was named (built-in name, package or path); workers resolve it from this. */
  strategySpecifier: string;
  /** Plugins the model's layers come from (workers import them before rebuilding it); default none. */
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
   * Worker threads to scan on locally, one layer per unit; 0 or 1: this thread, as is any local scan with
   * `fineTuneSteps` or `measureTime` (a fine-tune or a timing would compete with the others for the cores).
   * Default 0. Ignored with `queue`.
   */
  workers?: number;
  /** Run the units through this queue (on `decompose worker` processes) instead of locally. */
  queue?: QueueAddress;
}

/**
 * Worker threads a local scan of `layers` layers runs on: `workers`, at most one per layer, and 0 (this thread)
 * when fewer than 2 would be used or the scan fine-tunes or times its entries.
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
 * Runs a sensitivity scan with a progress bar, resuming from the JSON-lines cache, and returns its table: the
 * wiring of `@decompose/pipeline`'s `scanOnExecutor` (one `scan-layer` unit per layer) on this thread, on
 * worker threads, or through a queue. Each entry is evaluated on the calibration split; with `fineTuneSteps`
 * > 0 each decomposed model first trains that many SGD steps (constant `fineTuneLr`) on the training images.
 * The table is the same on every executor.
 */
export async function runScan(request: ScanRequest, out: Console): Promise<SensitivityTable> {
  const { model, strategy, ratios, calibration, batch } = request;
  // A model built for other images fails here, naming both shapes, not inside a tfjs reshape.
  modelGeometry(model, calibration);
  const local = (request.workers ?? 0) >= 2 && request.queue === undefined;
  if ((request.fineTuneSteps > 0 || request.measureTime) && local) {
    out.log('scanning on this thread: fine-tune steps and timing are not split over worker threads');
  }
  const fineTuneImages = Math.min(request.fineTuneData.count, request.fineTuneSteps * batch);
  // The layers are picked here too (scanOnExecutor picks the same) to know how many threads are worth starting.
  const layers = scanLayers(
    model,
    strategy,
    ratios,
    request.baseOptions ?? {},
    request.layers,
    request.layersField,
  );
  const threads = scanWorkerCount(request, layers.length);
  const executor = await openExecutor(request.queue, threads);
  let bar: ReturnType<Console['progress']> | undefined;
  try {
    return await scanOnExecutor(
      executor,
      {
        model,
        ...(request.modelPlugins === undefined ? {} : { modelPlugins: request.modelPlugins }),
        strategy,
        strategySpecifier: request.strategySpecifier,
        ...(request.layers === undefined ? {} : { layers: request.layers }),
        layersField: request.layersField,
        ratios,
        ...(request.baseOptions === undefined ? {} : { baseOptions: request.baseOptions }),
        calibration,
        ...(request.fineTuneSteps > 0
          ? {
              fineTune: {
                steps: request.fineTuneSteps,
                lr: request.fineTuneLr,
                batch,
                data: selectImages(
                  request.fineTuneData,
                  Uint32Array.from({ length: fineTuneImages }, (_, i) => i),
                ),
              },
            }
          : {}),
        ...(request.measureTime ? { timing: { batch: TIMING_BATCH, repeats: TIMING_REPEATS } } : {}),
        seed: request.seed,
        cacheFile: request.cacheFile,
      },
      {
        onStart: ({ total, cached }) => {
          out.log(
            `scanning ${layers.length} layers x ${ratios.length} ratios with ${strategy.name} on ${calibration.count} calibration images` +
              (request.queue !== undefined
                ? ` through queue '${request.queue.name}' at ${request.queue.url}`
                : threads > 0
                  ? ` in ${threads} worker threads`
                  : ' on this thread') +
              (cached > 0 ? ` (${cached} entries cached in ${request.cacheFile})` : ''),
          );
          bar = out.progress(`scan ${strategy.name}`, total);
        },
        onProgress: ({ done, entry, cached }) =>
          bar?.update(
            done,
            `${entry.layer} @ ${entry.ratio}: calib acc ${percent(entry.metric.accuracy)}${cached ? ' (cached)' : ''}`,
          ),
      },
    );
  } finally {
    bar?.stop();
    await executor.close();
  }
}
