import type { EngineInfo, SkippedBackend } from '@decompose/engine';

/** The longest line the engine report prints without `--verbose`. */
export const ENGINE_LINE_LIMIT = 100;

/** Why a backend was skipped, with the underlying error when there is one. */
export function skipReason(skipped: SkippedBackend): string {
  return `${skipped.reason}${skipped.detail ? ` (${skipped.detail})` : ''}`;
}

/**
 * The lines every command prints first about the engine. By default one line of at most
 * {@link ENGINE_LINE_LIMIT} characters: the backend, its threads and, in a few words, why a better backend was
 * skipped (just its name when even that does not fit). With `verbose`, one line per fact: the backend, each
 * skipped backend with the underlying error and the fix, and the kernels the engine registered.
 */
export function describeEngine(info: EngineInfo, verbose: boolean): string[] {
  const threads = `${info.threads} thread${info.threads === 1 ? '' : 's'}`;
  if (verbose) {
    return [
      `backend: ${info.backend} (${threads})`,
      ...info.skipped.map((s) => `skipped ${s.backend}: ${skipReason(s)}. ${s.fix}`),
      ...(info.engineKernels.length > 0 ? [`engine kernels: ${info.engineKernels.join(', ')}`] : []),
    ];
  }
  if (info.skipped.length === 0) return [`backend: ${info.backend} (${threads})`];
  const line = (skipped: string) => `backend: ${info.backend} (${threads}; ${skipped}, see --verbose)`;
  const withReasons = line(info.skipped.map((s) => `${s.backend} skipped: ${s.reason}`).join('; '));
  if (withReasons.length <= ENGINE_LINE_LIMIT) return [withReasons];
  return [line(`${info.skipped.map((s) => s.backend).join(', ')} skipped`)];
}
