import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, LayerVariable } from '@tensorflow/tfjs-layers';
import type { PyJsonDict } from '@tensorflow/tfjs-layers/dist/keras_format/types.js';
import type { BackendName } from '../backends.js';
import { workerEntry } from '../threads.js';
import {
  type BatchSlice,
  checkBatch,
  checkImages,
  type ImageBatch,
  splitBatch,
  type TrainingBatch,
} from './batch.js';
import type { GradientComputer } from './computer.js';
import {
  describeError,
  GradientComputerClosedError,
  GradientWorkerError,
  type WorkerFailurePhase,
} from './errors.js';
import type { FromWorker, ToWorker, WorkerSetup } from './protocol.js';
import type { GradientResult, LossSettings } from './step.js';
import { layoutOf, readWeights, type WeightLayout, weightView, writeWeight } from './weights.js';

/** What a pool of gradient workers is built from. */
export interface WorkerPoolSettings {
  model: LayersModel;
  workers: number;
  loss: LossSettings;
  exampleShape: number[];
  setupModules: string[];
  resolveFrom: string;
  backend: BackendName | undefined;
}

/** One worker thread with at most one request in flight; any failure rejects it and is reported once. */
class WorkerHandle {
  readonly gradients: Float32Array;
  readonly statistics: Float32Array;
  private readonly worker: Worker;
  private phase: WorkerFailurePhase = 'setup';
  private waiting: { resolve: (message: FromWorker) => void; reject: (error: Error) => void } | undefined;
  private failure: GradientWorkerError | undefined;
  private closing = false;

  constructor(
    readonly index: number,
    setup: WorkerSetup,
    private readonly onFailure: (error: GradientWorkerError) => void,
  ) {
    this.gradients = new Float32Array(setup.gradients);
    this.statistics = new Float32Array(setup.statistics);
    const entry = workerEntry(new URL('./worker.js', import.meta.url));
    this.worker = new Worker(entry.url, { workerData: setup, execArgv: entry.execArgv, argv: entry.argv });
    // An idle worker does not keep the process alive (so a forgotten close() cannot hang the program);
    // a worker with a request in flight does.
    this.worker.unref();
    this.worker.on('message', (message: FromWorker) => {
      if (message.type === 'failed') this.fail(message.message);
      else this.settle(message);
    });
    this.worker.on('error', (error) => this.fail(`uncaught ${describeError(error)}`));
    this.worker.on('messageerror', (error) => this.fail(`unreadable message (${describeError(error)})`));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.fail(`the thread exited with code ${code}`);
    });
  }

  /** Waits for the worker's `ready` message. */
  async ready(): Promise<void> {
    await this.next();
    this.phase = 'step';
  }

  /** Sends a request and waits for its answer. */
  request(message: ToWorker, transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    const answer = this.next();
    if (this.failure === undefined) this.worker.postMessage(message, transfer);
    return answer;
  }

  /** Stops the thread; a request still waiting is rejected. */
  async terminate(): Promise<void> {
    this.closing = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(new GradientComputerClosedError());
    await this.worker.terminate();
  }

  private next(): Promise<FromWorker> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  private settle(message: FromWorker): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    this.worker.unref();
    waiting?.resolve(message);
  }

  private fail(reason: string): void {
    if (this.failure !== undefined || this.closing) return;
    this.failure = new GradientWorkerError(this.index, this.phase, reason);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(this.failure);
    this.onFailure(this.failure);
  }
}

/**
 * Data-parallel gradients over worker threads: each step writes the model's weights into shared memory,
 * gives each worker a contiguous slice of the batch, and averages the workers' gradients and BatchNorm
 * statistics weighted by slice size. Predictions go the same way: current weights into shared memory, a
 * slice to each worker, their outputs put back together in batch order.
 */
export class WorkerPool implements GradientComputer {
  private readonly trainable: LayerVariable[];
  private readonly nonTrainable: LayerVariable[];
  private readonly trainableLayout: WeightLayout;
  private readonly nonTrainableLayout: WeightLayout;
  private readonly weights: Float32Array;
  private readonly handles: WorkerHandle[] = [];
  private readonly exampleSize: number;
  /** Bumped whenever the shared buffer gets different weights (workers start with none: version 0 is never sent). */
  private weightsVersion = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private failure: GradientWorkerError | undefined;

  private constructor(private readonly settings: WorkerPoolSettings) {
    const { model } = settings;
    this.trainable = model.trainableWeights;
    this.nonTrainable = model.nonTrainableWeights;
    this.trainableLayout = layoutOf(this.trainable);
    this.nonTrainableLayout = layoutOf(this.nonTrainable);
    this.exampleSize = tf.util.sizeFromShape(settings.exampleShape);
    const floats = (count: number) => new SharedArrayBuffer(count * Float32Array.BYTES_PER_ELEMENT);
    const weights = floats(this.trainableLayout.size + this.nonTrainableLayout.size);
    this.weights = new Float32Array(weights);
    const topology = model.toJSON(null, false) as PyJsonDict;
    for (let index = 0; index < settings.workers; index++) {
      const setup: WorkerSetup = {
        index,
        topology,
        setupModules: settings.setupModules,
        resolveFrom: settings.resolveFrom,
        backend: settings.backend,
        loss: settings.loss,
        exampleShape: settings.exampleShape,
        trainable: this.trainableLayout,
        nonTrainable: this.nonTrainableLayout,
        weights,
        gradients: floats(this.trainableLayout.size),
        statistics: floats(this.nonTrainableLayout.size),
      };
      this.handles.push(new WorkerHandle(index, setup, (error) => this.fail(error)));
    }
  }

  /** Starts the workers and waits until each has rebuilt the model; a failing worker closes the pool. */
  static async start(settings: WorkerPoolSettings): Promise<WorkerPool> {
    const pool = new WorkerPool(settings);
    try {
      await Promise.all(pool.handles.map((handle) => handle.ready()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get workers(): number {
    return this.handles.length;
  }

  async compute(batch: TrainingBatch): Promise<GradientResult> {
    this.assertOpen();
    checkBatch(batch, this.exampleSize, this.settings.loss.numClasses);
    return this.queue(() => this.step(batch));
  }

  async predict(batch: ImageBatch): Promise<Float32Array> {
    this.assertOpen();
    checkImages(batch, this.exampleSize);
    return this.queue(() => this.forward(batch));
  }

  async workerTensorCounts(): Promise<number[]> {
    this.assertOpen();
    const answers = await Promise.all(this.handles.map((handle) => handle.request({ type: 'memory' })));
    return answers.map((answer) => (answer.type === 'memory' ? answer.numTensors : Number.NaN));
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.handles.map((handle) => handle.terminate()));
  }

  private assertOpen(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new GradientComputerClosedError();
  }

  private fail(error: GradientWorkerError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    void this.close();
  }

  /** Runs requests one after another: they share the weight buffer. */
  private queue<T>(run: () => Promise<T>): Promise<T> {
    const result = this.tail.then(run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /**
   * Writes the main model's current weights (trainable, then non-trainable: BatchNorm moving statistics) into
   * the shared buffer the workers load them from, bumping `weightsVersion` if they changed, and returns the
   * non-trainable part.
   */
  private publishWeights(): Float32Array {
    const trainableSize = this.trainableLayout.size;
    const nonTrainable = this.weights.subarray(trainableSize);
    const trainableChanged = readWeights(
      this.trainable,
      this.trainableLayout,
      this.weights.subarray(0, trainableSize),
    );
    const nonTrainableChanged = readWeights(this.nonTrainable, this.nonTrainableLayout, nonTrainable);
    if (trainableChanged || nonTrainableChanged) this.weightsVersion++;
    return nonTrainable;
  }

  /** The workers that get a slice of a batch of `count` (all of them unless `count` is smaller), with their slices. */
  private partsOf(count: number): { handle: WorkerHandle; slice: BatchSlice; share: number }[] {
    return splitBatch(count, this.handles.length).flatMap((slice, index) => {
      const handle = this.handles[index];
      return handle && slice.count > 0 ? [{ handle, slice, share: slice.count / count }] : [];
    });
  }

  /** A copy of the images of `slice` (the copy is transferred to the worker). */
  private imagesOf(batch: ImageBatch, slice: BatchSlice): Float32Array<ArrayBuffer> {
    return batch.images.slice(slice.start * this.exampleSize, (slice.start + slice.count) * this.exampleSize);
  }

  private async forward(batch: ImageBatch): Promise<Float32Array> {
    this.assertOpen();
    this.publishWeights();
    const parts = this.partsOf(batch.count);
    const answers = await Promise.all(
      parts.map(({ handle, slice }) => {
        const images = this.imagesOf(batch, slice);
        const request: ToWorker = {
          type: 'predict',
          images,
          count: slice.count,
          weightsVersion: this.weightsVersion,
        };
        return handle.request(request, [images.buffer]);
      }),
    );
    const outputSize = this.settings.loss.numClasses;
    const outputs = new Float32Array(batch.count * outputSize);
    for (const [p, answer] of answers.entries()) {
      const part = parts[p];
      if (answer.type !== 'predicted' || part === undefined) {
        throw new Error(
          `Gradient worker ${p} answered a prediction with '${answer.type}' (a bug in @decompose/engine).`,
        );
      }
      outputs.set(answer.outputs, part.slice.start * outputSize);
    }
    return outputs;
  }

  private async step(batch: TrainingBatch): Promise<GradientResult> {
    this.assertOpen();
    const before = this.publishWeights();
    const parts = this.partsOf(batch.count);
    const answers = await Promise.all(
      parts.map(({ handle, slice }) => {
        const images = this.imagesOf(batch, slice);
        const labels = batch.labels.slice(slice.start, slice.start + slice.count);
        const request: ToWorker = {
          type: 'step',
          images,
          labels,
          count: slice.count,
          weightsVersion: this.weightsVersion,
        };
        return handle.request(request, [images.buffer, labels.buffer]);
      }),
    );

    let loss = 0;
    let correct = 0;
    const gradients = this.trainableLayout.shapes.map(
      (_, i) => new Float32Array(weightView(this.weights, this.trainableLayout, i).length),
    );
    const statistics = new Float32Array(before);
    for (const [p, answer] of answers.entries()) {
      const part = parts[p];
      if (answer.type !== 'stepped' || part === undefined) {
        throw new Error(
          `Gradient worker ${p} answered a step with '${answer.type}' (a bug in @decompose/engine).`,
        );
      }
      loss += part.share * answer.loss;
      correct += answer.correct;
      for (const [i, gradient] of gradients.entries()) {
        addScaled(gradient, weightView(part.handle.gradients, this.trainableLayout, i), part.share);
      }
      // Average the changes rather than the values, so that statistics no worker changed stay bit-identical.
      for (let k = 0; k < statistics.length; k++) {
        statistics[k] =
          (statistics[k] ?? 0) + part.share * ((part.handle.statistics[k] ?? 0) - (before[k] ?? 0));
      }
    }
    this.nonTrainable.forEach((variable, i) => {
      const updated = weightView(statistics, this.nonTrainableLayout, i);
      const previous = weightView(before, this.nonTrainableLayout, i);
      if (updated.some((value, k) => value !== previous[k])) writeWeight(variable, updated);
    });
    return { loss, correct, gradients };
  }
}

/** `target += scale * source`, element by element. */
function addScaled(target: Float32Array, source: Float32Array, scale: number): void {
  for (let k = 0; k < target.length; k++) target[k] = (target[k] ?? 0) + scale * (source[k] ?? 0);
}
