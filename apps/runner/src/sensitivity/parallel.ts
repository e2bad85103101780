import { Worker } from 'node:worker_threads';
import type { DecompositionStrategy } from '@decompose/core';
import { BACKENDS, type BackendName, workerEntry } from '@decompose/engine';
import {
  type ScanCache,
  type ScanEntry,
  type ScanProgress,
  type SensitivityTable,
  scanEntryKey,
} from '@decompose/sensitivity';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describeError, ScanWorkerError } from '../errors.js';
import type { FromScanWorker, ScanWorkerSetup } from './worker-protocol.js';

/** A calibration-split scan (no fine-tune, no timing) to spread over worker threads. */
export interface ParallelScanRequest {
  model: tfl.LayersModel;
  /** The strategy, resolved on this thread (its name and version key the cache). */
  strategy: DecompositionStrategy;
  /** How the strategy was named (built-in name, package or path): each worker resolves it again. */
  strategySpecifier: string;
  /** Plugins the model's layers come from (`plugins.json` beside a saved model); each worker imports them. */
  modelPlugins: readonly string[];
  /** Layers to scan, in model order. */
  layers: readonly string[];
  ratios: readonly number[];
  /** Strategy options besides the ratio. */
  baseOptions: Readonly<Record<string, unknown>>;
  seed: number;
  /** Calibration images, normalised as in training, NHWC, and their labels. */
  images: Float32Array;
  imageShape: readonly number[];
  labels: Uint8Array;
  /** Entries found here are not recomputed; new ones are set here, from this thread, as workers finish them. */
  cache: ScanCache;
  /** Worker threads (≥ 2; fewer when there are fewer layers). */
  workers: number;
  onProgress?: (progress: ScanProgress) => void;
}

/**
 * The layers each worker scans: layer i goes to worker i mod n, so every worker gets early layers (with long
 * downstream parts to re-run) and late ones alike. Never more groups than layers.
 */
export function interleaveLayers(layers: readonly string[], workers: number): string[][] {
  const groups = Array.from({ length: Math.min(workers, layers.length) }, (): string[] => []);
  for (const [i, layer] of layers.entries()) groups[i % groups.length]!.push(layer);
  return groups;
}

/** The model's topology and weights as `model.save` hands them to a save handler. */
async function modelArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (saved === undefined) throw new Error('model.save did not hand over the model artifacts.');
  return saved;
}

/** The backend this thread runs on, for the workers to activate too. */
function activeBackend(): BackendName | undefined {
  const name = tf.getBackend();
  return BACKENDS.find((known) => known === name);
}

/** One worker thread scanning a group of layers; `result` settles once, with its table or its failure. */
class ScanWorker {
  readonly result: Promise<SensitivityTable>;
  private readonly worker: Worker;
  private finished = false;

  constructor(
    setup: ScanWorkerSetup,
    onMessage: (message: Exclude<FromScanWorker, { type: 'done' | 'failed' }>) => void,
  ) {
    const entry = workerEntry(new URL('./scan-worker.js', import.meta.url));
    this.worker = new Worker(entry.url, { workerData: setup, execArgv: entry.execArgv, argv: entry.argv });
    this.result = new Promise((resolve, reject) => {
      const fail = (reason: string) => {
        if (this.finished) return;
        this.finished = true;
        reject(new ScanWorkerError(setup.index, setup.layers, reason));
      };
      this.worker.on('message', (message: FromScanWorker) => {
        if (message.type === 'failed') fail(message.message);
        else if (message.type === 'done') {
          this.finished = true;
          resolve(message.table);
        } else if (!this.finished) onMessage(message);
      });
      this.worker.on('error', (error) => fail(`uncaught ${describeError(error)}`));
      this.worker.on('messageerror', (error) => fail(`unreadable message (${describeError(error)})`));
      // Messages posted before the thread ended arrive before 'exit', so a finished worker has settled here.
      this.worker.on('exit', (code) => fail(`the thread exited with code ${code} before finishing`));
    });
    // Failures are handled through Promise.all in scanInWorkers; a worker failing after another is ignored.
    this.result.catch(() => undefined);
  }

  /** Stops the thread (a finished one has usually ended already). */
  async terminate(): Promise<void> {
    this.finished = true;
    await this.worker.terminate();
  }
}

/**
 * The calibration-split scan of {@link ParallelScanRequest.layers}, split over worker threads (layers
 * interleaved in model order, see {@link interleaveLayers}), each running `scanSensitivity` on its share. The
 * merged table holds what one `scanSensitivity` over all the layers would: the baseline metric, the layers in
 * the order given, the entries in layer then ratio order; `seconds` is the wall-clock time of the whole.
 *
 * @throws ScanWorkerError when a worker throws or exits early; every worker is terminated first, and the entries
 *   finished before are in the cache.
 */
export async function scanInWorkers(request: ParallelScanRequest): Promise<SensitivityTable> {
  const started = performance.now();
  const { strategy, ratios, cache } = request;
  const artifacts = await modelArtifacts(request.model);
  const total = request.layers.length * ratios.length;
  let done = 0;
  // Cache writes go one after another, so that lines never interleave and all are written before returning.
  let stored: Promise<void> = Promise.resolve();
  let storeFailure: unknown;
  const onMessage = (message: Exclude<FromScanWorker, { type: 'done' | 'failed' }>) => {
    if (message.type === 'store') {
      stored = stored
        .then(() => cache.set(message.key, message.entry))
        .catch((error: unknown) => {
          storeFailure ??= error;
        });
    } else {
      done++;
      request.onProgress?.({ done, total, entry: message.entry, cached: message.cached });
    }
  };

  const groups = interleaveLayers(request.layers, request.workers);
  const workers: ScanWorker[] = [];
  try {
    for (const [index, layers] of groups.entries()) {
      const cached = new Map<string, ScanEntry>();
      for (const layer of layers) {
        for (const ratio of ratios) {
          const key = scanEntryKey(strategy, layer, ratio, 0);
          const entry = await cache.get(key);
          if (entry !== undefined) cached.set(key, entry);
        }
      }
      const setup: ScanWorkerSetup = {
        index,
        backend: activeBackend(),
        strategy: request.strategySpecifier,
        modelPlugins: [...request.modelPlugins],
        artifacts,
        layers,
        ratios: [...ratios],
        baseOptions: { ...request.baseOptions },
        seed: request.seed,
        images: request.images,
        imageShape: [...request.imageShape],
        labels: request.labels,
        cached,
      };
      workers.push(new ScanWorker(setup, onMessage));
    }
    const tables = await Promise.all(workers.map((worker) => worker.result));
    await stored;
    if (storeFailure !== undefined) throw storeFailure;
    return mergeTables(request, groups, tables, (performance.now() - started) / 1000);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
    await stored;
  }
}

/**
 * The workers' tables (worker i scanned `groups[i]`) as one: the layers in the request's order, entries in
 * layer then ratio order.
 *
 * @throws ScanWorkerError when a worker resolved the strategy to another name or version than this thread.
 */
function mergeTables(
  request: ParallelScanRequest,
  groups: readonly string[][],
  tables: readonly SensitivityTable[],
  seconds: number,
): SensitivityTable {
  const { strategy, ratios } = request;
  for (const [index, table] of tables.entries()) {
    if (table.strategy.name !== strategy.name || table.strategy.version !== strategy.version) {
      throw new ScanWorkerError(
        index,
        groups[index] ?? [],
        `'${request.strategySpecifier}' resolved to ${table.strategy.name}@${table.strategy.version} there, ` +
          `but to ${strategy.name}@${strategy.version} on the main thread`,
      );
    }
  }
  const first = tables[0];
  if (first === undefined) throw new RangeError('A parallel scan needs at least one layer to scan.');
  const layerIndex = (layer: string) => request.layers.indexOf(layer);
  const entryIndex = (entry: ScanEntry) =>
    layerIndex(entry.layer) * ratios.length + ratios.indexOf(entry.ratio);
  return {
    ...first,
    layers: tables.flatMap((t) => t.layers).sort((a, b) => layerIndex(a.layer) - layerIndex(b.layer)),
    entries: tables.flatMap((t) => t.entries).sort((a, b) => entryIndex(a) - entryIndex(b)),
    seconds,
  };
}
