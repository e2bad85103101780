import { EngineError } from '../errors.js';

/** Thrown when a batch handed to `compute` (or to `softmaxCrossEntropy`) is malformed. */
export class InvalidBatchError extends EngineError {
  override readonly name = 'InvalidBatchError';
}

/** Thrown by `createGradientComputer` when its options cannot describe a working setup. */
export class GradientOptionsError extends EngineError {
  override readonly name = 'GradientOptionsError';
}

/** Where a worker failed: while it set itself up, or while it computed a step. */
export type WorkerFailurePhase = 'setup' | 'step';

/**
 * Thrown when a gradient worker throws or exits. The computer that owned it is closed afterwards (its other
 * workers are terminated): create a new one to go on.
 */
export class GradientWorkerError extends EngineError {
  override readonly name = 'GradientWorkerError';
  constructor(
    readonly worker: number,
    readonly phase: WorkerFailurePhase,
    readonly reason: string,
  ) {
    super(
      `Gradient worker ${worker} failed during ${phase}: ${reason}. ` +
        (phase === 'setup'
          ? 'Check that every setup module imports in a plain Node worker and that the model rebuilds from model.toJSON().'
          : 'The gradient computer is closed; create a new one with createGradientComputer to go on.'),
    );
  }
}

/** Thrown by `compute` after `close()`, or after a worker failure closed the computer. */
export class GradientComputerClosedError extends EngineError {
  override readonly name = 'GradientComputerClosedError';
  constructor(readonly failure?: GradientWorkerError) {
    super(
      failure
        ? `The gradient computer was closed because ${failure.message}`
        : 'The gradient computer is closed; create a new one with createGradientComputer.',
    );
  }
}

/** An error as one line for a message that crosses threads: its class name and message. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
