import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { BackendUnavailableError, UnknownBackendError } from './errors.js';
import { registerFileRouter } from './io/router.js';
import { installEngineKernels } from './kernels.js';

/** The backends the engine can run on, best first. */
export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** Why a backend better than the active one was not used. */
export interface SkippedBackend {
  backend: BackendName;
  /** What went wrong, in a few words, e.g. `tfjs-node not installed`. */
  reason: string;
  /** The underlying error's message (first line), or null when the reason says it all. */
  detail: string | null;
  /** How to make the backend available. */
  fix: string;
}

/** What `initEngine` chose. */
export interface EngineInfo {
  backend: BackendName;
  /** Threads the backend computes with in this process. */
  threads: number;
  /** Better backends that were passed over, with the reason (empty when the best one loaded). */
  skipped: SkippedBackend[];
  /** Kernels the engine registered on top of the backend. */
  engineKernels: string[];
}

export interface InitEngineOptions {
  /** Force a backend; otherwise `DECOMPOSE_BACKEND`, otherwise the best available. */
  backend?: BackendName;
}

const require = createRequire(import.meta.url);

function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? message).trim();
}

/** What kept `@tensorflow/tfjs-node` from loading, in a few words (short enough for a status line), from its import's error. */
function tfjsNodeProblem(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = errorMessage(error);
  if (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    message.includes("'@tensorflow/tfjs-node'")
  )
    return 'tfjs-node not installed';
  // Its install script downloads libtensorflow and builds the addon; where that failed, the package is there
  // without it.
  if (message.includes('native addon')) return 'tfjs-node native addon missing';
  return 'tfjs-node did not load';
}

/** Loads a backend's package and makes tfjs aware of it; throws with the reason when it cannot. */
async function loadBackend(name: BackendName): Promise<number> {
  switch (name) {
    case 'tensorflow': {
      try {
        await import('@tensorflow/tfjs-node');
      } catch (error) {
        throw new BackendUnavailableError(
          'tensorflow',
          tfjsNodeProblem(error),
          '@tensorflow/tfjs-node is an optional dependency whose install downloads libtensorflow; reinstall with network access to storage.googleapis.com, or use DECOMPOSE_BACKEND=wasm.',
          errorMessage(error),
        );
      }
      if (tf.findBackend('tensorflow') === undefined) {
        throw new BackendUnavailableError(
          'tensorflow',
          'tfjs-node registered no backend',
          'Make sure @tensorflow/tfjs-node and @decompose/engine resolve the same @tensorflow/tfjs-core version.',
          'it loaded, but registered its backend with another copy of @tensorflow/tfjs-core',
        );
      }
      return 1;
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // Load the .wasm binaries from the installed package, never from a CDN.
      const dist = path.join(
        path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
        'dist',
      );
      wasm.setWasmPaths(`${dist}${path.sep}`);
      await setBackendOrThrow('wasm');
      return wasm.getThreadsCount();
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      await setBackendOrThrow('cpu');
      return 1;
    }
  }
}

async function setBackendOrThrow(name: BackendName): Promise<void> {
  let ok: boolean;
  try {
    ok = await tf.setBackend(name);
  } catch (error) {
    throw new BackendUnavailableError(
      name,
      errorMessage(error),
      'Reinstall dependencies with `pnpm install`.',
    );
  }
  if (!ok) {
    throw new BackendUnavailableError(
      name,
      'tfjs could not initialise it',
      'Reinstall dependencies with `pnpm install`, or pick another backend with DECOMPOSE_BACKEND.',
    );
  }
}

function parseBackend(value: string): BackendName {
  const known = BACKENDS.find((name) => name === value);
  if (known === undefined) throw new UnknownBackendError(value, BACKENDS);
  return known;
}

/**
 * Activates the best available backend (`tensorflow` → `wasm` → `cpu`), or the one forced by
 * `options.backend` or `DECOMPOSE_BACKEND`, and registers the engine's own kernels on it.
 * A forced backend that cannot load throws {@link BackendUnavailableError}; it never falls back silently.
 */
export async function initEngine(options: InitEngineOptions = {}): Promise<EngineInfo> {
  const envChoice = process.env.DECOMPOSE_BACKEND?.trim();
  const forced = options.backend ?? (envChoice ? parseBackend(envChoice) : undefined);
  if (forced !== undefined) parseBackend(forced);
  const candidates: readonly BackendName[] = forced ? [forced] : BACKENDS;
  const skipped: SkippedBackend[] = [];
  for (const backend of candidates) {
    let threads: number;
    try {
      threads = await loadBackend(backend);
    } catch (error) {
      if (forced || !(error instanceof BackendUnavailableError)) throw error;
      skipped.push({ backend, reason: error.reason, detail: error.detail ?? null, fix: error.fix });
      continue;
    }
    if (backend === 'tensorflow') await setBackendOrThrow('tensorflow');
    await tf.ready();
    registerFileRouter();
    return { backend, threads, skipped, engineKernels: installEngineKernels(backend) };
  }
  // cpu ships with the engine, so reaching this means even it failed to load.
  throw new BackendUnavailableError(
    'cpu',
    'no backend could be initialised',
    'Reinstall dependencies with `pnpm install`.',
  );
}
