import { Cifar10Error } from '@decompose/cifar10';
import { CoreError } from '@decompose/core';
import {
  describeFileSystemFailure,
  EngineError,
  type FileSystemFailure,
  type FileSystemProblem,
} from '@decompose/engine';
import { ImagesError } from '@decompose/images';
import { JobsError } from '@decompose/jobs';
import { PipelineError } from '@decompose/pipeline';
import { ResNetError } from '@decompose/resnet';
import { SensitivityError } from '@decompose/sensitivity';
import { TrainError, type TrainingInterruptedError } from '@decompose/train';
import { WebError } from '@decompose/web';

/**
 * Base class of every error the runner throws on purpose (an invalid configuration, nothing to resume, an output
 * it cannot write), whose message names the problem and the fix: the CLI prints it as one `error:` line.
 */
export abstract class RunnerError extends Error {}

/** Thrown when a command's configuration (config file merged with flags) is invalid; one issue per line. */
export class ConfigError extends RunnerError {
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

/** Thrown when `--data` is neither a CIFAR-10 binary folder nor an image folder. */
export class DataLayoutError extends RunnerError {
  override readonly name = 'DataLayoutError';
  constructor(readonly dir: string) {
    super(
      `--data ${dir} is neither a CIFAR-10 binary folder (data_batch_1.bin .. data_batch_5.bin, test_batch.bin, ` +
        'batches.meta.txt) nor an image folder (<dir>/<class>/*.png|jpg|jpeg, or <dir>/train/<class>/… and ' +
        '<dir>/test/<class>/…). Point --data at one of the two.',
    );
  }
}

/** Thrown by `train --resume` when the output folder holds no checkpoint to continue. */
export class NoCheckpointError extends RunnerError {
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
export class TrainInterruptedError extends RunnerError {
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
 * Thrown when an output of a command (a report, `summary.json`, `train.log`, its folder) cannot be written: the
 * disk is full, the folder is read-only or not the user's, or a file stands where a folder should be. Nothing
 * half-written is left where a later run would read it.
 */
export class OutputFileError extends RunnerError {
  override readonly name = 'OutputFileError';
  /** What the file system refused, e.g. `permission-denied`. */
  readonly problem: FileSystemProblem;
  constructor(
    /** The file or folder that could not be written. */
    readonly path: string,
    failure: FileSystemFailure,
    options?: ErrorOptions,
  ) {
    super(describeFileSystemFailure(`Cannot write ${path}`, failure), options);
    this.problem = failure.problem;
  }
}

/** Exit code of a run that stopped on bad input (a typed error with a clear message). */
export const EXIT_USAGE = 2;
/** Exit code of a run stopped by Ctrl-C (128 + SIGINT, as a shell reports it). */
export const EXIT_INTERRUPTED = 130;
/** Exit code of a run that stopped on an unexpected error (a bug: the stack is printed). */
export const EXIT_BUG = 1;

/**
 * The base classes of the errors the packages throw on purpose. The strategies' (basis, SVD, the Tucker plugin and
 * any other plugin) extend core's `StrategyError`, a `CoreError`.
 */
const TYPED_ERRORS = [
  RunnerError,
  EngineError,
  Cifar10Error,
  ImagesError,
  ResNetError,
  TrainError,
  CoreError,
  SensitivityError,
  PipelineError,
  JobsError,
  WebError,
] as const;

/**
 * Whether `error` is one of our typed errors (an instance of a package's base error class, such as train's
 * `TrainError`), whose message says what is wrong and how to fix it, so the user needs no stack trace. Anything
 * else, a built-in `TypeError` or a named error of a dependency such as tfjs's `ValueError`, is a bug.
 */
export function isTypedError(error: unknown): error is Error {
  return TYPED_ERRORS.some((base) => error instanceof base);
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
