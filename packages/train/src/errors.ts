import { describeFileSystemFailure, type FileSystemFailure, type FileSystemProblem } from '@decompose/engine';

/**
 * Base class of every error this package throws on purpose (bad options, unreadable or mismatched checkpoints,
 * diverged training, checkpoints that cannot be written), whose message names the problem and the fix. Catch it
 * to handle all of them at once; anything else is a bug.
 */
export abstract class TrainError extends Error {}

/** Thrown when a training or optimizer option is out of range; the message names the option and the fix. */
export class InvalidTrainingOptionError extends TrainError {
  override readonly name = 'InvalidTrainingOptionError';
  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(`Invalid training option '${option}': ${problem}`);
  }
}

/** Thrown when the gradients handed to the optimizer do not match the weights it updates. */
export class GradientMismatchError extends TrainError {
  override readonly name = 'GradientMismatchError';
  constructor(message: string) {
    super(`${message}. Gradients must come in model.trainableWeights order, one Float32Array per weight.`);
  }
}

/**
 * Thrown when a step's loss is NaN or infinite, before that step's update. The last good checkpoint (if any)
 * is left untouched; the model in memory may hold non-finite BatchNorm statistics, so reload the checkpoint
 * rather than reuse it.
 */
export class TrainingDivergedError extends TrainError {
  override readonly name = 'TrainingDivergedError';
  constructor(
    /** 1-based epoch in which the loss diverged. */
    readonly epoch: number,
    /** Global step (0-based) whose loss diverged. */
    readonly step: number,
    readonly loss: number,
    /** Learning rate of that step. */
    readonly lr: number,
  ) {
    super(
      `Loss became ${loss} at epoch ${epoch}, global step ${step} (lr ${lr}); training stopped and the last ` +
        'good checkpoint was kept. Lower the learning rate, add warm-up, or check the input data for NaN.',
    );
  }
}

/** Thrown when a checkpoint directory's contents cannot be read back (truncated, hand-edited, wrong format). */
export class InvalidCheckpointError extends TrainError {
  override readonly name = 'InvalidCheckpointError';
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`Checkpoint at ${path} is unreadable: ${problem}. Delete it to start over.`);
  }
}

/** Thrown on resume when the checkpoint was produced by a different model or training configuration. */
export class CheckpointMismatchError extends TrainError {
  override readonly name = 'CheckpointMismatchError';
  constructor(
    readonly path: string,
    /** One line per difference, e.g. `config.epochs: checkpoint 2, this run 3`. */
    readonly differences: readonly string[],
  ) {
    super(
      `Checkpoint at ${path} does not match this run:\n  ${differences.join('\n  ')}\n` +
        'Resume with the settings that produced it, or use another checkpoint directory.',
    );
  }
}

/** Thrown when a fresh (non-resume) run would overwrite an existing checkpoint. */
export class CheckpointExistsError extends TrainError {
  override readonly name = 'CheckpointExistsError';
  constructor(readonly path: string) {
    super(
      `A checkpoint already exists at ${path}. Pass resume: true to continue it, or choose an empty checkpoint directory.`,
    );
  }
}

/**
 * Thrown when a checkpoint (or the metrics log beside it) cannot be written: the disk is full, the folder is
 * read-only or not the user's. Nothing half-written is left, and the last good checkpoint, if any, is intact:
 * fix the cause and resume from it.
 */
export class CheckpointWriteError extends TrainError {
  override readonly name = 'CheckpointWriteError';
  /** What the file system refused, e.g. `disk-full`. */
  readonly problem: FileSystemProblem;
  constructor(
    /** The checkpoint directory written to. */
    readonly path: string,
    failure: FileSystemFailure,
    /** The newest checkpoint there, kept as it was; null when there is none yet. */
    readonly kept: string | null,
    options?: ErrorOptions,
  ) {
    super(
      `${describeFileSystemFailure(`Cannot write a checkpoint to ${path}`, failure)} ` +
        (kept === null
          ? 'No checkpoint had been written yet.'
          : `The last good checkpoint, ${kept}, is intact: resume from it once this is fixed.`),
      options,
    );
    this.problem = failure.problem;
  }
}

/**
 * Thrown before any work when a model's input shape or class count does not fit the images it would be
 * trained or evaluated on (for example a 224×224 ImageNet model given CIFAR-10's 32×32 images).
 */
export class ModelDataMismatchError extends TrainError {
  override readonly name = 'ModelDataMismatchError';
  constructor(
    readonly model: string,
    /** The model's input shape without the batch dimension. */
    readonly modelInput: readonly number[],
    /** Units of the model's output. */
    readonly modelClasses: number,
    /** The shape of one image of the data. */
    readonly dataImage: readonly number[],
    /** Classes of the data. */
    readonly dataClasses: number,
    /** Names the data, e.g. `CIFAR-10` or an image folder. */
    readonly dataName = 'CIFAR-10',
  ) {
    super(
      `Model '${model}' takes input [${modelInput.join(', ')}] and predicts ${modelClasses} classes, but the ` +
        `data are [${dataImage.join(', ')}] images (channels last) of ${dataClasses} classes (${dataName}). Use a ` +
        `model built for ${dataImage.join('×')} inputs and ${dataClasses} classes, or data of the model's input size and classes.`,
    );
  }
}

/** Thrown when another live process holds a run directory's lock (see `lockRunDirectory`). */
export class RunLockedError extends TrainError {
  override readonly name = 'RunLockedError';
  constructor(
    readonly dir: string,
    readonly file: string,
    readonly owner: { pid: number; host: string; started: string; purpose: string },
  ) {
    super(
      `${dir} is in use by ${owner.purpose} (pid ${owner.pid} on ${owner.host}, since ${owner.started}). ` +
        `Wait for it to finish, stop it, or use another output folder; if that process no longer runs, delete ${file}.`,
    );
  }
}

/**
 * Thrown when `train` stops because its `signal` was aborted (e.g. Ctrl-C). Everything up to `checkpoint` is
 * kept; resuming from it redoes the interrupted epoch and ends as an uninterrupted run would.
 */
export class TrainingInterruptedError extends TrainError {
  override readonly name = 'TrainingInterruptedError';
  constructor(
    /** 1-based epoch that was running. */
    readonly epoch: number,
    /** Epochs completed and checkpointed (0 when none). */
    readonly completedEpochs: number,
    /** The newest checkpoint, or null when none was written. */
    readonly checkpoint: string | null,
  ) {
    super(
      checkpoint === null
        ? `Training interrupted during epoch ${epoch}, before any checkpoint was written; start it again.`
        : `Training interrupted during epoch ${epoch}; the checkpoint of epoch ${completedEpochs} is kept at ` +
            `${checkpoint}. Resume from it (epoch ${epoch} is redone; the result equals an uninterrupted run).`,
    );
  }
}
