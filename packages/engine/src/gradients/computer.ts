import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { BackendName } from '../backends.js';
import { checkBatch, checkImages, exampleShapeOf, type ImageBatch, type TrainingBatch } from './batch.js';
import { GradientComputerClosedError, GradientOptionsError } from './errors.js';
import { labelSmoothingProblem, type ModelOutputKind } from './loss.js';
import { WorkerPool } from './pool.js';
import { type GradientResult, inferenceStep, type LossSettings, outputKindOf, trainingStep } from './step.js';
import { checkTrainable } from './trainability.js';

/** What {@link createGradientComputer} computes gradients of, and where. */
export interface GradientComputerOptions {
  /** The main-thread model; its weights are the source of truth. */
  model: LayersModel;
  /** 0 = compute in this thread on `model` itself; n ≥ 1 = n worker threads. */
  workers: number;
  /** In [0, 1); default 0. */
  labelSmoothing?: number;
  /** Classes the model scores; must equal the size of its output. */
  numClasses: number;
  /**
   * Modules each worker imports before rebuilding the model (to register custom layer classes, e.g.
   * '@decompose/basis'): bare names, relative paths (both resolved from `resolveFrom`), absolute paths or
   * file URLs. Ignored with `workers: 0`.
   */
  setupModules?: string[];
  /** Where bare and relative `setupModules` resolve from: a file or directory URL or path; default the working directory. */
  resolveFrom?: string | URL;
  /** Worker backend; default: what `initEngine` picks in the worker. With `workers: 0` the active backend is used. */
  backend?: BackendName;
  /** What the model outputs; default: `probabilities` when its last layer is a softmax, else `logits`. */
  output?: ModelOutputKind;
}

/**
 * Computes the loss and gradients of a model on batches, and its outputs in inference mode, in this thread or
 * over worker threads.
 */
export interface GradientComputer {
  readonly workers: number;
  /**
   * Loss and gradients of `model`'s current weights on the batch. Updates BatchNorm moving statistics of
   * `model` (in worker mode: the average of the workers' updated statistics, weighted by slice size).
   * Throws {@link InvalidBatchError} for a malformed batch and {@link GradientWorkerError} when a worker
   * throws or exits (the computer is closed after that).
   */
  compute(batch: TrainingBatch): Promise<GradientResult>;
  /**
   * The outputs of `model`'s current weights on the batch, in inference mode (BatchNorm normalises with
   * `model`'s moving statistics and leaves them as they are), as `count` rows of `numClasses` back to back.
   * In worker mode each worker runs one slice of the batch with the main model's weights, BatchNorm moving
   * statistics included, copied to it first. Throws {@link InvalidBatchError} for a malformed batch and
   * {@link GradientWorkerError} when a worker throws or exits (the computer is closed after that).
   */
  predict(batch: ImageBatch): Promise<Float32Array>;
  /** `tf.memory().numTensors` in each worker (empty with `workers: 0`), to check that steps leak nothing. */
  workerTensorCounts(): Promise<number[]>;
  /** Stops the workers. Later calls to `compute` throw {@link GradientComputerClosedError}. */
  close(): Promise<void>;
}

/**
 * Creates a gradient computer for `options.model`, after checking that the model can train on the active backend
 * (`checkTrainable`: throws `UntrainableLayerError` naming the layer and the missing kernel). With workers it resolves once every worker has rebuilt the
 * model, and throws {@link GradientWorkerError} (phase `setup`) if one cannot. Workers copy the model's
 * topology and list of trainable weights now: after changing layers or `trainable` flags, create a new one.
 */
export async function createGradientComputer(options: GradientComputerOptions): Promise<GradientComputer> {
  const { model, workers, numClasses } = options;
  if (!Number.isInteger(workers) || workers < 0) {
    throw new GradientOptionsError(`workers must be a whole number ≥ 0 (0 = this thread); got ${workers}.`);
  }
  const outputSize = model.outputs[0]?.shape.at(-1);
  if (!Number.isInteger(numClasses) || numClasses < 2 || outputSize !== numClasses) {
    throw new GradientOptionsError(
      `numClasses is ${numClasses} but the model outputs ${outputSize} scores per example; they must be equal and ≥ 2.`,
    );
  }
  const labelSmoothing = options.labelSmoothing ?? 0;
  const problem = labelSmoothingProblem(labelSmoothing);
  if (problem !== undefined) throw new GradientOptionsError(problem);
  const loss: LossSettings = { numClasses, labelSmoothing, output: options.output ?? outputKindOf(model) };
  const exampleShape = exampleShapeOf(model);
  // Fail now, naming the layer and the kernel, rather than with a raw stack in the first step (on the workers'
  // backend: the active one unless the option names another).
  if (options.backend === undefined || options.backend === tf.getBackend()) checkTrainable(model);
  if (workers === 0) return new InThreadGradientComputer(model, exampleShape, loss);
  return WorkerPool.start({
    model,
    workers,
    loss,
    exampleShape,
    setupModules: options.setupModules ?? [],
    resolveFrom: resolveFromUrl(options.resolveFrom),
    backend: options.backend,
  });
}

/** `resolveFrom` as a file URL; a directory gets a trailing slash so that resolution starts inside it. */
function resolveFromUrl(resolveFrom: string | URL = process.cwd()): string {
  if (resolveFrom instanceof URL) return resolveFrom.href;
  if (resolveFrom.startsWith('file:')) return resolveFrom;
  const isDirectory = existsSync(resolveFrom) && statSync(resolveFrom).isDirectory();
  return pathToFileURL(isDirectory ? path.join(resolveFrom, path.sep) : resolveFrom).href;
}

/** `workers: 0`: gradients of the model itself, in this thread. */
class InThreadGradientComputer implements GradientComputer {
  readonly workers = 0;
  private readonly exampleSize: number;
  private closed = false;

  constructor(
    private readonly model: LayersModel,
    private readonly exampleShape: number[],
    private readonly loss: LossSettings,
  ) {
    this.exampleSize = tf.util.sizeFromShape(exampleShape);
  }

  async compute(batch: TrainingBatch): Promise<GradientResult> {
    if (this.closed) throw new GradientComputerClosedError();
    checkBatch(batch, this.exampleSize, this.loss.numClasses);
    return trainingStep(this.model, batch, this.exampleShape, this.loss);
  }

  async predict(batch: ImageBatch): Promise<Float32Array> {
    if (this.closed) throw new GradientComputerClosedError();
    checkImages(batch, this.exampleSize);
    return inferenceStep(this.model, batch, this.exampleShape);
  }

  async workerTensorCounts(): Promise<number[]> {
    return [];
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
