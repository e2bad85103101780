import type { BackendName } from '@decompose/engine';
import type { ScanEntry, SensitivityTable } from '@decompose/sensitivity';
import type * as tf from '@tensorflow/tfjs-core';

// The messages between a parallel sensitivity scan (parallel.ts) and its worker threads (scan-worker.ts).
// Everything crosses by structured clone: the model as its saved artifacts, the strategy as the specifier the
// user gave (the worker resolves it again, importing a plugin and registering its layer classes), the
// calibration images as normalised floats.

/** What a scan worker is started with (its `workerData`). */
export interface ScanWorkerSetup {
  /** The worker's number, for messages. */
  index: number;
  /** The backend the parent thread runs on; the worker activates the same one. */
  backend: BackendName | undefined;
  /** The strategy as the user named it: a built-in name, a package name or a file path. */
  strategy: string;
  /** Plugins the model's layers come from, imported before the model is rebuilt. */
  modelPlugins: string[];
  /** The model as `model.save` hands it to a save handler: topology, weight specs and weight data. */
  artifacts: tf.io.ModelArtifacts;
  /** This worker's share of the layers to scan, in model order. */
  layers: string[];
  ratios: number[];
  /** Strategy options besides the ratio. */
  baseOptions: Record<string, unknown>;
  seed: number;
  /** The calibration images, normalised as in training, NHWC. */
  images: Float32Array;
  imageShape: number[];
  labels: Uint8Array;
  /** Entries of this worker's layers that the parent's cache already holds, by `scanEntryKey`. */
  cached: Map<string, ScanEntry>;
}

/** A scan worker's messages to the parent thread. */
export type FromScanWorker =
  /** A finished entry for the parent to append to the cache file. */
  | { type: 'store'; key: string; entry: ScanEntry }
  /** One more entry done (computed, or taken from the cache). */
  | { type: 'progress'; entry: ScanEntry; cached: boolean }
  /** The worker's table: its layers' baselines and entries. */
  | { type: 'done'; table: SensitivityTable }
  | { type: 'failed'; message: string };
