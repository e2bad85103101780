import type { BackendName } from './backends.js';

/**
 * Base class of every error this package throws on purpose: bad input or a setup problem whose message says what
 * is wrong and how to fix it. Catch it to handle all of the engine's typed errors at once; anything else the
 * engine throws is a bug.
 */
export abstract class EngineError extends Error {}

/** Thrown when a backend was asked for (by option or `DECOMPOSE_BACKEND`) but cannot run here. */
export class BackendUnavailableError extends EngineError {
  override readonly name = 'BackendUnavailableError';
  constructor(
    readonly backend: string,
    readonly reason: string,
    readonly fix: string,
    /** The underlying error's message, when the reason names it only in a few words. */
    readonly detail?: string,
  ) {
    super(`Backend '${backend}' is unavailable: ${reason}${detail ? ` (${detail})` : ''}. ${fix}`);
  }
}

/** Thrown when `DECOMPOSE_BACKEND` or the `backend` option names no known backend. */
export class UnknownBackendError extends EngineError {
  override readonly name = 'UnknownBackendError';
  constructor(
    readonly value: string,
    readonly known: readonly BackendName[],
  ) {
    super(
      `Unknown backend '${value}'. Use one of: ${known.join(', ')} (or unset DECOMPOSE_BACKEND to pick the best).`,
    );
  }
}
