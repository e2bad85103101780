import type { BackendName } from './backends.js';

/** Thrown when a backend was asked for (by option or `DECOMPOSE_BACKEND`) but cannot run here. */
export class BackendUnavailableError extends Error {
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
export class UnknownBackendError extends Error {
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
