import type { BlobStore } from './blobs.js';
import type { ResultOf, Unit, UnitProgress } from './unit.js';

/** Why a unit failed for good: its error's class name and message (the same on every back end). */
export interface UnitFailure {
  readonly name: string;
  readonly message: string;
}

/** What became of one unit. */
export type UnitOutcome<R> =
  | { readonly ok: true; readonly result: R }
  | { readonly ok: false; readonly error: UnitFailure };

/** Callbacks and the abort signal of one {@link Executor.run}. */
export interface RunOptions<U extends Unit> {
  /** A unit reported progress (`index` is its position in the batch). */
  onProgress?(index: number, progress: UnitProgress, unit: U): void;
  /** A unit finished, in the order they finish; `run` still returns every outcome in input order. */
  onResult?(index: number, outcome: UnitOutcome<ResultOf<U>>, unit: U): void;
  /**
   * Aborts the run: `run` rejects with the signal's reason. The local back end aborts the running units'
   * signals and starts no more; the queue back end stops following its jobs and leaves them in the queue, so
   * that a coordinator started again with the same units attaches to them.
   */
  signal?: AbortSignal;
}

/**
 * Runs batches of units on one back end (NNI's `TrainingService` pattern: one interface, several back ends).
 * A unit that fails for good is reported in its outcome and does not stop the others.
 */
export interface Executor {
  /** Runs the units and resolves with their outcomes in input order, streaming each through `onResult`. */
  run<U extends Unit>(units: readonly U[], options?: RunOptions<U>): Promise<UnitOutcome<ResultOf<U>>[]>;
  /** The blob store units of this executor see (`context.blobs`): put inputs here, read results from here. */
  readonly blobs: BlobStore;
  /** Stops threads and closes connections; the executor runs nothing after. */
  close(): Promise<void>;
}

/** The {@link UnitFailure} of a thrown value. */
export function failureOf(error: unknown): UnitFailure {
  if (error instanceof Error) return { name: error.name || 'Error', message: error.message };
  return { name: 'Error', message: String(error) };
}

/**
 * BullMQ keeps only a failed job's message (`failedReason`), so the error's name travels in front of it, as
 * `Name: message` (what a stack trace starts with, and readable in queue dashboards).
 */
export function encodeFailure(failure: UnitFailure): string {
  return `${failure.name}: ${failure.message}`;
}

/** The {@link UnitFailure} of a `failedReason` made by {@link encodeFailure}; others (BullMQ's own) are `Error`s. */
export function decodeFailure(reason: string | undefined): UnitFailure {
  const match = /^([A-Za-z_$][\w$]*): ([\s\S]*)$/.exec(reason ?? '');
  if (match?.[1] !== undefined && match[2] !== undefined && /Error$|Exception$/.test(match[1])) {
    return { name: match[1], message: match[2] };
  }
  return { name: 'Error', message: reason || 'the job failed without a reason' };
}

/** Rejects with the signal's reason when it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  signal?.throwIfAborted();
}
