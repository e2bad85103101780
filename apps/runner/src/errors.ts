import type { TrainingInterruptedError } from '@decompose/train';

/** Thrown when a command's configuration (config file merged with flags) is invalid; one issue per line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    /** One line per problem, each naming the field, the bad value and the expected form. */
    readonly issues: readonly string[],
  ) {
    super(
      issues.length === 1
        ? `Invalid configuration: ${issues[0]}`
        : `Invalid configuration:\n  ${issues.join('\n  ')}`,
    );
  }
}

/** Thrown by `train --resume` when the output folder holds no checkpoint to continue. */
export class NoCheckpointError extends Error {
  override readonly name = 'NoCheckpointError';
  constructor(
    /** The run's output folder. */
    readonly dir: string,
    /** Where its checkpoints would be. */
    readonly checkpointDir: string,
  ) {
    super(
      `No checkpoint to resume in ${dir} (none under ${checkpointDir}). Drop --resume to start afresh, or point --out at an earlier run.`,
    );
  }
}

/** Thrown by `decompose train` stopped by Ctrl-C: what was kept, and the command that resumes it. */
export class TrainInterruptedError extends Error {
  override readonly name = 'TrainInterruptedError';
  constructor(
    readonly interrupted: TrainingInterruptedError,
    /** The run's output folder. */
    readonly dir: string,
  ) {
    super(
      interrupted.checkpoint === null
        ? `${interrupted.message} Nothing in ${dir} needs cleaning up.`
        : `Training interrupted during epoch ${interrupted.epoch}; the checkpoint of epoch ` +
            `${interrupted.completedEpochs} is kept in ${dir}. To resume, run the same decompose train command ` +
            'with --resume added (same --out and settings); the result equals an uninterrupted run.',
    );
  }
}

/**
 * Thrown when a worker thread of a parallel sensitivity scan throws or exits before finishing its layers. The
 * scan's other workers are terminated; the entries finished so far are in the scan cache, so running the scan
 * again resumes from them.
 */
export class ScanWorkerError extends Error {
  override readonly name = 'ScanWorkerError';
  constructor(
    /** The worker's number (0-based). */
    readonly worker: number,
    /** The layers it was scanning. */
    readonly layers: readonly string[],
    /** What went wrong, as one line. */
    readonly reason: string,
  ) {
    super(
      `Sensitivity scan worker ${worker} (layers ${layers.join(', ')}) failed: ${reason}. ` +
        'The other scan workers were stopped; run the scan again to resume from the cached entries, ' +
        'or scan on this thread (workers 0) to see the error where it happens.',
    );
  }
}

/** An error as one line for a message that crosses threads: its class name and message. */
export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Exit code of a run that stopped on bad input (a typed error with a clear message). */
export const EXIT_USAGE = 2;
/** Exit code of a run stopped by Ctrl-C (128 + SIGINT, as a shell reports it). */
export const EXIT_INTERRUPTED = 130;
/** Exit code of a run that stopped on an unexpected error (a bug: the stack is printed). */
export const EXIT_BUG = 1;

/** The JavaScript engine's own error classes: a bug, not a message written for the user. */
const BUILT_IN_ERRORS = new Set([
  'Error',
  'TypeError',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'EvalError',
  'URIError',
  'AggregateError',
]);

/**
 * Whether `error` is one of our typed errors (a named subclass of Error, such as `CheckpointMismatchError`),
 * whose message says what is wrong and how to fix it, so the user needs no stack trace.
 */
export function isTypedError(error: unknown): error is Error {
  return error instanceof Error && error.name.endsWith('Error') && !BUILT_IN_ERRORS.has(error.name);
}

/**
 * The one place the runner turns a failure into output and an exit code: a typed error prints
 * `error: <message>` and gives {@link EXIT_USAGE} ({@link EXIT_INTERRUPTED} for Ctrl-C); anything else prints its stack and gives {@link EXIT_BUG}.
 */
export function reportError(error: unknown, print: (line: string) => void = console.error): number {
  if (isTypedError(error)) {
    print(`error: ${error.message}`);
    return error instanceof TrainInterruptedError ? EXIT_INTERRUPTED : EXIT_USAGE;
  }
  print(error instanceof Error ? (error.stack ?? String(error)) : `error: ${String(error)}`);
  return EXIT_BUG;
}
