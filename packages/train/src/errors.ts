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
