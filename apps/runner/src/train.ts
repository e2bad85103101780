import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Cifar10Images } from '@decompose/cifar10';
import { type EngineInfo, initEngine } from '@decompose/engine';
import { probeRedis, type UnitProgress } from '@decompose/jobs';
import {
  type ArmEvent,
  type HoldOut,
  holdOutSplit,
  trainOptions as pipelineTrainOptions,
  plural,
  type SgdSettings,
  saveModel,
  trainOnExecutor,
} from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import {
  type EpochMetrics,
  LOCK_FILE,
  lockRunDirectory,
  readCheckpoint,
  readMetrics,
  type StepProgress,
  TrainingInterruptedError,
  type TrainOptions,
  train,
} from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkTrainingBatch, type TrainConfig } from './config.js';
import { type DataRecord, dataRecord, type LoadedData, loadData } from './data.js';
import { describeEngine } from './engine-report.js';
import { ConfigError, NoCheckpointError, TrainInterruptedError } from './errors.js';
import { openExecutor, queueAddress } from './executor.js';
import { asOutputError, ensureDirectory, writeJsonAtomic } from './files.js';
import type { Console, Progress } from './progress.js';

/** Files a training run writes under its output folder. */
export const RUN_FILES = {
  checkpoints: 'checkpoints',
  model: 'model',
  summary: 'summary.json',
  log: 'train.log',
  /** The `--hold-out` record, written before training so that a resume can check it holds out the same images. */
  holdOut: 'hold-out.json',
} as const;

/** What `decompose train` writes to `<out>/summary.json`. */
export interface TrainSummary {
  config: TrainConfig & { out: string };
  backend: EngineInfo;
  /** Images read; `train` counts those trained on (without the hold-out). */
  data: DataRecord;
  /**
   * The calibration split kept out of training (`--hold-out`), enough to recreate it: `decompose sensitivity`
   * measures on exactly these images by default. Null when nothing was held out.
   */
  holdOut: HoldOut | null;
  /** Every epoch of the run, those before a resume included. */
  epochs: EpochMetrics[];
  /** Epochs done before this invocation (0 unless resumed). */
  resumedFrom: number;
  finalTest: { loss: number; accuracy: number } | null;
  /** Mean training throughput over the epochs this invocation ran (null when it ran none). */
  trainImagesPerSecond: number | null;
  /** Wall-clock seconds of each epoch (training and evaluation). */
  secondsPerEpoch: number[];
  modelDir: string;
}

/**
 * Progress callbacks for `train()`: a bar per epoch on `out` and one log line per finished epoch. They take
 * train's progress values, so a unit's step and epoch progress (from a worker) is drawn the same way.
 */
export function trainingProgress(
  batch: number,
  out: Console,
): { onStep(p: StepProgress): void; onEpoch(m: EpochMetrics): void } {
  let bar: Progress | null = null;
  const status = (p: StepProgress) =>
    `loss ${p.loss.toFixed(3)} acc ${percent(p.accuracy)} lr ${p.lr.toPrecision(3)} ${p.imagesPerSecond.toFixed(0)} img/s`;
  return {
    onStep: (p) => {
      // The first step is over before the bar exists: count its time, so the first line has an ETA.
      if (p.step === 1) {
        bar?.stop();
        bar = out.progress(`epoch ${p.epoch}/${p.epochs}`, p.stepsPerEpoch, batch / p.imagesPerSecond);
      }
      bar?.update(p.step, status(p));
    },
    onEpoch: (m) => {
      bar?.stop();
      bar = null;
      out.log(formatEpoch(m));
    },
  };
}

/**
 * Draws a unit's progress as a local run draws it: its training steps as a bar, its epochs as log lines, a
 * retried attempt that resumed from the unit's checkpoint as a log line, and the arm pipeline's events through
 * `onEvent`.
 */
export function unitProgress(
  batch: number,
  out: Console,
  onEvent: (event: ArmEvent) => void = () => {},
): (progress: UnitProgress) => void {
  const training = trainingProgress(batch, out);
  return (progress) => {
    if (typeof progress === 'number') return;
    const { phase } = progress;
    if (phase === 'step') training.onStep(progress as unknown as StepProgress);
    else if (phase === 'epoch') training.onEpoch(progress.metrics as unknown as EpochMetrics);
    else if (phase === 'resumed') {
      // A retried attempt (its worker lost, or its first try thrown) goes on from an earlier one's checkpoint.
      out.log(
        `training resumed after epoch ${progress.done}/${progress.total} from an earlier attempt's checkpoint`,
      );
    } else onEvent(progress as unknown as ArmEvent);
  };
}

/** The `train()` options for `model` under the command's SGD settings (the pipeline's), with progress drawn on `out`. */
export function trainOptions(
  settings: SgdSettings,
  run: { model: tfl.LayersModel; trainData: Cifar10Images; evalData: Cifar10Images; epochs: number },
  out: Console,
): TrainOptions {
  return { ...pipelineTrainOptions(settings, run), ...trainingProgress(settings.batch, out) };
}

export { plural };

/** A fraction as a percentage with one decimal, e.g. `91.3%`. */
export function percent(fraction: number): string {
  return `${(100 * fraction).toFixed(1)}%`;
}

/** The one line logged per epoch. */
export function formatEpoch(m: EpochMetrics): string {
  const test = m.eval ? `test loss ${m.eval.loss.toFixed(4)} acc ${percent(m.eval.accuracy)}` : 'no test set';
  return (
    `epoch ${m.epoch}/${m.epochs}: train loss ${m.train.loss.toFixed(4)} acc ${percent(m.train.accuracy)} | ` +
    `${test} | ${m.seconds.toFixed(1)}s (${m.train.imagesPerSecond.toFixed(0)} img/s) lr ${m.lr.toPrecision(3)}`
  );
}

/**
 * Records a run's hold-out in `file` when the run starts, or on resume checks that it is the one the run began
 * with (the checkpoint only knows how many images were trained on, not which).
 *
 * @throws ConfigError when a resumed run would hold out other images than it began with.
 */
async function recordHoldOut(file: string, record: HoldOut | null, resuming: boolean): Promise<void> {
  if (!resuming) {
    await writeJsonAtomic(file, record);
    return;
  }
  const earlier: unknown = await readFile(file, 'utf8')
    .then((text) => JSON.parse(text) as unknown)
    .catch(() => null);
  if (JSON.stringify(earlier) !== JSON.stringify(record)) {
    throw new ConfigError([
      `--hold-out/--hold-out-seed: the run being resumed held out ${earlier === null ? 'no images' : `other images (${file})`}; ` +
        'resume with the --hold-out and --hold-out-seed it began with, or start a new run in another --out',
    ]);
  }
}

/** A model trained by {@link runTrain}, here or on a queue worker. */
interface TrainedRun {
  model: tfl.LayersModel;
  /** Every epoch of the run (from its checkpoints' record when resumed). */
  epochs: EpochMetrics[];
  /** The epochs trained by this invocation. */
  history: EpochMetrics[];
  /** The epoch this invocation started from (0 unless resumed). */
  startEpoch: number;
}

/** Trains in this process, resumably, checkpointing into `checkpointDir`. */
async function trainHere(
  config: TrainConfig,
  run: {
    trainData: Cifar10Images;
    test: Cifar10Images;
    checkpointDir: string;
    outDir: string;
    out: Console;
    signal: AbortSignal;
  },
): Promise<TrainedRun> {
  const { out, outDir, checkpointDir } = run;
  const model = createCifarResNet({
    arch: config.model,
    shortcut: config.shortcut,
    init: config.init,
    seed: config.seed,
  });
  try {
    out.log(
      `${config.resume ? 'resuming' : 'training'} ${config.model} for ${plural(config.epochs, 'epoch')} into ${outDir}`,
    );
    const result = await train({
      ...trainOptions(
        config,
        { model, trainData: run.trainData, evalData: run.test, epochs: config.epochs },
        out,
      ),
      checkpointDir,
      resume: config.resume,
      signal: run.signal,
    }).catch((error: unknown) => {
      throw error instanceof TrainingInterruptedError ? new TrainInterruptedError(error, outDir) : error;
    });
    return {
      model,
      epochs: await readMetrics(checkpointDir),
      history: result.history,
      startEpoch: result.startEpoch,
    };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/**
 * Trains as a `training-run` unit on the queue (a `decompose worker` runs it; the images and the model travel
 * through Redis). Ctrl-C stops following and leaves the job in the queue: the same command re-attaches to it.
 */
async function trainOnQueue(
  config: TrainConfig,
  run: { data: LoadedData; outDir: string; out: Console; signal: AbortSignal },
): Promise<TrainedRun> {
  const queue = queueAddress(config)!;
  run.out.log(
    `training ${config.model} for ${plural(config.epochs, 'epoch')} on queue '${queue.name}' at ${queue.url}`,
  );
  const executor = await openExecutor(queue);
  try {
    const trained = await trainOnExecutor(
      executor,
      {
        architecture: { arch: config.model, shortcut: config.shortcut, init: config.init, seed: config.seed },
        data: run.data,
        recipe: config,
        holdOut:
          config.holdOut === undefined
            ? null
            : { count: config.holdOut, seed: config.holdOutSeed ?? config.seed },
      },
      { what: 'the training run', onProgress: unitProgress(config.batch, run.out), signal: run.signal },
    );
    return { model: trained.model, epochs: trained.epochs, history: trained.epochs, startEpoch: 0 };
  } finally {
    await executor.close();
  }
}

/**
 * `decompose train`: trains a CIFAR ResNet from scratch (or resumes `<out>`'s newest checkpoint), logging to
 * `<out>/train.log`, then saves `<out>/model/` and `<out>/summary.json`. With `holdOut`, a stratified calibration
 * split of that many training images (seed `holdOutSeed`, default `seed`) is left out of training and recorded
 * in the summary.
 *
 * @throws NoCheckpointError for `resume` without a checkpoint; the train package's `CheckpointMismatchError`
 *   and `CheckpointExistsError` for a checkpoint that does not fit the run.
 */
export async function runTrain(config: TrainConfig, out: Console): Promise<TrainSummary> {
  const outDir = path.resolve(config.out ?? path.join('runs', config.model));
  const checkpointDir = path.join(outDir, RUN_FILES.checkpoints);
  // An unreachable Redis is reported before anything is written.
  if (config.queue !== undefined) await probeRedis(config.queue);
  await ensureDirectory(outDir);
  const lock = await lockRunDirectory(outDir, 'decompose train').catch((error: unknown) => {
    throw asOutputError(error, path.join(outDir, LOCK_FILE));
  });
  // Ctrl-C stops before the next step, leaving the newest checkpoint to resume from; a second one quits at once.
  const interrupt = new AbortController();
  const onInterrupt = () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
    out.log('interrupted: stopping before the next step (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onInterrupt);
  try {
    // Read under the lock: no other run is writing checkpoints now.
    const checkpoint = await readCheckpoint(checkpointDir);
    if (config.resume && checkpoint === null) throw new NoCheckpointError(outDir, checkpointDir);
    out.logTo(path.join(outDir, RUN_FILES.log));
    if (lock.tookOverFrom !== null) {
      out.log(
        `took over ${lock.file} from pid ${lock.tookOverFrom.pid} (${lock.tookOverFrom.purpose}), which no longer runs`,
      );
    }
    const engine = await initEngine();
    for (const line of describeEngine(engine, out.verbose)) out.log(line);
    const data = await loadData(config, out);
    const held =
      config.holdOut === undefined
        ? null
        : holdOutSplit(data.train, config.holdOut, config.holdOutSeed ?? config.seed, '--hold-out');
    const trainData = held?.rest ?? data.train;
    checkTrainingBatch('--batch', config.batch, trainData.count);
    // A fresh run into a folder holding a checkpoint is refused by train(): leave that run's record alone.
    if (config.resume || checkpoint === null)
      await recordHoldOut(path.join(outDir, RUN_FILES.holdOut), held?.record ?? null, config.resume);
    if (held !== null) {
      out.log(
        `held out ${held.record.count} of ${held.record.from} training images (stratified, seed ${held.record.seed}) ` +
          `as the calibration split; training on ${trainData.count}`,
      );
    }
    const trained =
      config.queue === undefined
        ? await trainHere(config, {
            trainData,
            test: data.test,
            checkpointDir,
            outDir,
            out,
            signal: interrupt.signal,
          })
        : await trainOnQueue(config, { data, outDir, out, signal: interrupt.signal });
    const { model, history } = trained;
    try {
      const modelDir = path.join(outDir, RUN_FILES.model);
      await saveModel(model, modelDir);
      const { epochs } = trained;
      const last = epochs.at(-1)?.eval ?? null;
      const summary: TrainSummary = {
        config: { ...config, out: outDir },
        backend: engine,
        data: dataRecord(data, trainData.count),
        holdOut: held?.record ?? null,
        epochs,
        resumedFrom: trained.startEpoch,
        finalTest: last && { loss: last.loss, accuracy: last.accuracy },
        trainImagesPerSecond:
          history.length === 0
            ? null
            : history.reduce((sum, m) => sum + m.train.imagesPerSecond, 0) / history.length,
        secondsPerEpoch: epochs.map((m) => m.seconds),
        modelDir,
      };
      await writeJsonAtomic(path.join(outDir, RUN_FILES.summary), summary);
      out.result(
        `done: final test accuracy ${summary.finalTest ? percent(summary.finalTest.accuracy) : 'n/a'}` +
          `${summary.trainImagesPerSecond === null ? '' : `, ${summary.trainImagesPerSecond.toFixed(0)} img/s training`}; ` +
          `model in ${modelDir}`,
      );
      return summary;
    } finally {
      model.dispose();
    }
  } finally {
    out.logTo(null);
    process.off('SIGINT', onInterrupt);
    await lock.release();
  }
}
