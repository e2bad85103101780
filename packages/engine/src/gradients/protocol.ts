import type { PyJsonDict } from '@tensorflow/tfjs-layers/dist/keras_format/types.js';
import type { BackendName } from '../backends.js';
import type { LossSettings } from './step.js';
import type { WeightLayout } from './weights.js';

// The messages between a WorkerGradientComputer and its worker threads. Weights, gradients and updated
// non-trainable weights travel through SharedArrayBuffers; messages carry the batch slice and the scalars.

/** What a worker is started with (its `workerData`). */
export interface WorkerSetup {
  index: number;
  topology: PyJsonDict;
  /** Modules to import before the model is rebuilt, e.g. ones that register custom layer classes. */
  setupModules: string[];
  /** Bare module names in `setupModules` are resolved from here first. */
  resolveFrom: string;
  backend: BackendName | undefined;
  loss: LossSettings;
  exampleShape: number[];
  trainable: WeightLayout;
  nonTrainable: WeightLayout;
  /** Current weights, written by the main thread before each request: trainable first, then non-trainable. */
  weights: SharedArrayBuffer;
  /** This worker's gradients, one slot per trainable weight. */
  gradients: SharedArrayBuffer;
  /** This worker's non-trainable weights after its step (BatchNorm moving statistics). */
  statistics: SharedArrayBuffer;
}

/**
 * Requests that run the model carry the version of the weights in the shared buffer: the main thread bumps it
 * whenever it writes different weights, and a worker reloads them only when the version differs from the one
 * it last loaded, so that a run of predictions keeps its tensors (and the backend's cached conv operators).
 */
export type ToWorker =
  | { type: 'step'; images: Float32Array; labels: Int32Array; count: number; weightsVersion: number }
  | { type: 'predict'; images: Float32Array; count: number; weightsVersion: number }
  | { type: 'memory' };

export type FromWorker =
  | { type: 'ready'; backend: string }
  | { type: 'stepped'; loss: number; correct: number; numTensors: number }
  | { type: 'predicted'; outputs: Float32Array }
  | { type: 'memory'; numTensors: number }
  | { type: 'failed'; message: string };
