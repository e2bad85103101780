/** Thrown when a training or optimizer option is out of range; the message names the option and the fix. */
export class InvalidTrainingOptionError extends Error {
  override readonly name = 'InvalidTrainingOptionError';
  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(`Invalid training option '${option}': ${problem}`);
  }
}

/** Thrown when the gradients handed to the optimizer do not match the weights it updates. */
export class GradientMismatchError extends Error {
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
export class TrainingDivergedError extends Error {
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
export class InvalidCheckpointError extends Error {
  override readonly name = 'InvalidCheckpointError';
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`Checkpoint at ${path} is unreadable: ${problem}. Delete it to start over.`);
  }
}

/** Thrown on resume when the checkpoint was produced by a different model or training configuration. */
export class CheckpointMismatchError extends Error {
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
export class CheckpointExistsError extends Error {
  override readonly name = 'CheckpointExistsError';
  constructor(readonly path: string) {
    super(
      `A checkpoint already exists at ${path}. Pass resume: true to continue it, or choose an empty checkpoint directory.`,
    );
  }
}
