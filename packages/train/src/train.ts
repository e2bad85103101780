import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Cifar10Images, createBatchStream } from '@decompose/cifar10';
import { createDirectory, createGradientComputer, type GradientComputerOptions } from '@decompose/engine';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import writeFileAtomic from 'write-file-atomic';
import {
  type CheckpointInfo,
  guardCheckpointWrite,
  loadCheckpointWeights,
  readCheckpoint,
  readOptimizerState,
  writeCheckpoint,
} from './checkpoint.js';
import { configDifferences, modelSignature, type TrainConfig } from './config.js';
import {
  CheckpointExistsError,
  CheckpointMismatchError,
  InvalidTrainingOptionError,
  TrainingDivergedError,
  TrainingInterruptedError,
} from './errors.js';
import { type EvaluationResult, evaluate, modelGeometry } from './evaluate.js';
import { isNodeError } from './files.js';
import { createSchedule, resolveScheduleSpec, type ScheduleSpec } from './schedule.js';
import { SgdOptimizer, type SgdOptions } from './sgd.js';

/** File under the checkpoint directory to which each epoch's {@link EpochMetrics} is appended as a JSON line. */
export const METRICS_FILE = 'metrics.jsonl';

/** The per-epoch metrics a run appended to `<checkpointDir>/metrics.jsonl` (empty when there are none yet). */
export async function readMetrics(checkpointDir: string): Promise<EpochMetrics[]> {
  const text = await readFile(path.join(checkpointDir, METRICS_FILE), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as EpochMetrics);
}

/** Progress after one optimizer step; running figures cover the current epoch so far. */
export interface StepProgress {
  /** Current epoch, from 1. */
  epoch: number;
  epochs: number;
  /** Steps done in this epoch, from 1. */
  step: number;
  stepsPerEpoch: number;
  /** Steps done since training began (over all epochs, resumed ones included). */
  globalStep: number;
  /** Mean training loss of this epoch so far (label smoothing included). */
  loss: number;
  /** Training accuracy of this epoch so far, in [0, 1]. */
  accuracy: number;
  /** Learning rate of the step just taken. */
  lr: number;
  /** Training images per second over this epoch so far. */
  imagesPerSecond: number;
}

/** Summary of one finished epoch; also appended to `<checkpointDir>/metrics.jsonl`. */
export interface EpochMetrics {
  /** The epoch, from 1. */
  epoch: number;
  epochs: number;
  /** Steps done since training began, at the end of this epoch. */
  globalStep: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Wall-clock seconds of the epoch: training and evaluation (not the checkpoint). */
  seconds: number;
  train: { loss: number; accuracy: number; imagesPerSecond: number; seconds: number };
  /** Evaluation on `evalData`, or null when none was given. */
  eval: EvaluationResult | null;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** The model to train in place (its trainable weights and BatchNorm statistics change). */
  model: LayersModel;
  /** Training images; batched, shuffled and (by default) augmented by `@decompose/cifar10`'s batch stream. */
  trainData: Cifar10Images;
  /** Evaluated after every epoch when given. */
  evalData?: Cifar10Images;
  /** Total epochs (a resumed run continues up to this number). */
  epochs: number;
  batchSize: number;
  /** Batch size for evaluation (default `batchSize`). */
  evalBatchSize?: number;
  /** Pad-4 random crop and horizontal flip of training images (default true). */
  augment?: boolean;
  /** Drop each epoch's last, smaller batch (default false). */
  dropLast?: boolean;
  /** Seed of the shuffle and augmentation (default 0); batches depend only on (seed, epoch). */
  seed?: number;
  /** Learning rate as a function of the step. */
  schedule: ScheduleSpec;
  /** SGD settings (default plain SGD, no momentum, no weight decay). */
  optimizer?: SgdOptions;
  /** Label smoothing of the training loss, in [0, 1) (default 0). */
  labelSmoothing?: number;
  /** Gradient worker threads (default 0: this thread); see `createGradientComputer`. */
  workers?: number;
  /** How workers set themselves up (modules registering custom layers, their backend); see `createGradientComputer`. */
  workerOptions?: Pick<GradientComputerOptions, 'setupModules' | 'resolveFrom' | 'backend'>;
  /** Where checkpoints and metrics go; without it nothing is written. */
  checkpointDir?: string;
  /** Continue from the newest checkpoint in `checkpointDir` (starts afresh when there is none). */
  resume?: boolean;
  /**
   * Stops training before the next step once aborted (e.g. on Ctrl-C): `train` then throws
   * {@link TrainingInterruptedError}, and the newest checkpoint is intact and resumable.
   */
  signal?: AbortSignal;
  /** Called after every optimizer step. */
  onStep?: (progress: StepProgress) => void;
  /** Called after every epoch, once its checkpoint is written. */
  onEpoch?: (metrics: EpochMetrics) => void;
}

/** What {@link train} did. */
export interface TrainResult {
  /** Metrics of the epochs this call ran (not those before a resume). */
  history: EpochMetrics[];
  /** Epochs already done by the checkpoint this call resumed from; 0 when it started afresh. */
  startEpoch: number;
  /** Steps done in total at the end. */
  globalStep: number;
  /** Directory of the newest checkpoint, or null without `checkpointDir`. */
  checkpoint: string | null;
}

function checkCount(option: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidTrainingOptionError(option, `must be an integer ≥ ${min}, got ${value}`);
  }
}

/**
 * Trains `model` with SGD (PyTorch semantics) on `trainData` for `epochs` epochs, evaluating on `evalData`
 * and writing an atomic checkpoint after every epoch. With `resume`, continues from the newest checkpoint and
 * ends with the same weights as an uninterrupted run (batches depend only on seed and epoch; momentum and
 * the step count are restored). A NaN or infinite loss throws {@link TrainingDivergedError} and leaves the
 * last good checkpoint in place.
 *
 * @example
 * ```ts
 * const result = await train({
 *   model, trainData: data.train, evalData: data.test, epochs: 15, batchSize: 128,
 *   schedule: { type: 'cosine', lr: 0.1 },
 *   optimizer: { momentum: 0.9, weightDecay: 5e-4, weightDecayScope: 'all' },
 *   checkpointDir: 'runs/baseline', resume: true,
 * });
 * ```
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { model, trainData, evalData, epochs, batchSize, checkpointDir } = options;
  const { augment = true, dropLast = false, seed = 0, labelSmoothing = 0, workers = 0 } = options;
  const evalBatchSize = options.evalBatchSize ?? batchSize;
  checkCount('epochs', epochs, 1);
  checkCount('batchSize', batchSize, 1);
  checkCount('evalBatchSize', evalBatchSize, 1);
  checkCount('seed', seed, 0);
  checkCount('workers', workers, 0);
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) {
    throw new InvalidTrainingOptionError('labelSmoothing', `must be in [0, 1), got ${labelSmoothing}`);
  }
  if (options.resume && checkpointDir === undefined) {
    throw new InvalidTrainingOptionError('resume', 'needs checkpointDir, where the checkpoint to resume is');
  }
  const { numClasses } = modelGeometry(model, trainData);
  if (evalData) modelGeometry(model, evalData);
  const stream = createBatchStream(trainData, { batchSize, shuffle: true, augment, seed, dropLast });
  const stepsPerEpoch = stream.batchesPerEpoch;
  checkCount('batches per epoch (trainData.count with batchSize and dropLast)', stepsPerEpoch, 1);
  const schedule = createSchedule(options.schedule, { stepsPerEpoch, epochs });
  const optimizer = new SgdOptimizer(model.trainableWeights, options.optimizer);
  const config: TrainConfig = {
    model: modelSignature(model),
    epochs,
    batchSize,
    dropLast,
    augment,
    seed,
    trainCount: trainData.count,
    labelSmoothing,
    schedule: resolveScheduleSpec(options.schedule),
    optimizer: optimizer.options,
  };

  let startEpoch = 0;
  let globalStep = 0;
  let checkpoint: string | null = null;
  if (checkpointDir !== undefined) {
    await guardCheckpointWrite(checkpointDir, () => createDirectory(checkpointDir));
    const existing = await readCheckpoint(checkpointDir);
    if (existing && !options.resume) throw new CheckpointExistsError(existing.path);
    if (existing) {
      await restore(existing, config, model, optimizer);
      startEpoch = existing.epoch;
      globalStep = existing.globalStep;
      checkpoint = existing.path;
    }
    await guardCheckpointWrite(checkpointDir, () =>
      keepMetricsUpTo(path.join(checkpointDir, METRICS_FILE), startEpoch),
    );
  }

  const history: EpochMetrics[] = [];
  if (startEpoch >= epochs) return { history, startEpoch, globalStep, checkpoint };
  const computer = await createGradientComputer({
    model,
    workers,
    labelSmoothing,
    numClasses,
    ...options.workerOptions,
  });
  try {
    for (let epochIndex = startEpoch; epochIndex < epochs; epochIndex++) {
      const epoch = epochIndex + 1;
      const started = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let step = 0;
      let lr = 0;
      for (const batch of stream.epoch(epochIndex)) {
        if (options.signal?.aborted) throw new TrainingInterruptedError(epoch, epochIndex, checkpoint);
        lr = schedule(globalStep);
        const result = await computer.compute(batch);
        if (!Number.isFinite(result.loss))
          throw new TrainingDivergedError(epoch, globalStep, result.loss, lr);
        optimizer.step(result.gradients, lr);
        globalStep++;
        step++;
        lossSum += result.loss * batch.count;
        correct += result.correct;
        seen += batch.count;
        options.onStep?.({
          epoch,
          epochs,
          step,
          stepsPerEpoch,
          globalStep,
          loss: lossSum / seen,
          accuracy: correct / seen,
          lr,
          imagesPerSecond: seen / ((performance.now() - started) / 1000),
        });
      }
      const trainSeconds = (performance.now() - started) / 1000;
      const evaluation = evalData ? await evaluate(model, evalData, evalBatchSize, { computer }) : null;
      const metrics: EpochMetrics = {
        epoch,
        epochs,
        globalStep,
        lr,
        seconds: (performance.now() - started) / 1000,
        train: {
          loss: lossSum / seen,
          accuracy: correct / seen,
          imagesPerSecond: seen / trainSeconds,
          seconds: trainSeconds,
        },
        eval: evaluation,
      };
      if (checkpointDir !== undefined) {
        // Metrics before the checkpoint: a run killed in between redoes the epoch, and on resume
        // keepMetricsUpTo drops the line the checkpoint does not back.
        await guardCheckpointWrite(checkpointDir, () =>
          appendFile(path.join(checkpointDir, METRICS_FILE), `${JSON.stringify(metrics)}\n`),
        );
        checkpoint = await writeCheckpoint(checkpointDir, {
          model,
          optimizer: optimizer.getState(),
          epoch,
          globalStep,
          config,
        });
      }
      history.push(metrics);
      options.onEpoch?.(metrics);
    }
  } finally {
    await computer.close();
  }
  return { history, startEpoch, globalStep, checkpoint };
}

async function restore(
  checkpoint: CheckpointInfo,
  config: TrainConfig,
  model: LayersModel,
  optimizer: SgdOptimizer,
): Promise<void> {
  const differences = configDifferences(checkpoint.config, config);
  if (differences.length > 0) throw new CheckpointMismatchError(checkpoint.path, differences);
  await loadCheckpointWeights(model, checkpoint);
  optimizer.setState(await readOptimizerState(checkpoint));
}

/** Drops metrics lines of epochs after `epoch` (written by a run killed before their checkpoint completed). */
async function keepMetricsUpTo(file: string, epoch: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isNodeError(error, 'ENOENT')) return;
    throw error;
  }
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const kept = lines.filter((line) => {
    try {
      const parsed = JSON.parse(line) as { epoch?: unknown };
      return typeof parsed.epoch === 'number' && parsed.epoch <= epoch;
    } catch {
      return false;
    }
  });
  if (kept.length !== lines.length) await writeFileAtomic(file, kept.map((line) => `${line}\n`).join(''));
}
