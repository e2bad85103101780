// The part of the engine a web page can load: its wasm kernels, without the Node-only backend choice, file
// system and gradient workers of the main entry.
import { backend, getBackend } from '@tensorflow/tfjs-core';
import { BackendUnavailableError } from './errors.js';
import { type SimdBuild, SimdKernels } from './kernels/simd.js';
import type { WasmBackend } from './kernels/wasm-backend.js';
import { installEngineKernels } from './kernels.js';

export { BackendUnavailableError, EngineError } from './errors.js';
export type { SimdBuild } from './kernels/simd.js';

/** What {@link installWasmEngineKernels} registered, and which of its wasm builds runs. */
export interface WasmEngineKernels {
  /** The kernels registered for the wasm backend, sorted. */
  kernels: string[];
  /**
   * The build of the engine's SIMD module that runs on the backend's memory: `relaxed` (fused multiply-add),
   * `simd128`, or null where this browser cannot run it (the kernels then use XNNPACK's or JavaScript loops).
   */
  simd: SimdBuild | null;
  /** Whether that memory is shared (tfjs's threaded build, in a cross-origin isolated page). */
  sharedMemory: boolean;
}

/**
 * Registers the engine's kernels for tfjs's wasm backend, as `initEngine` does in Node: its SIMD convolutions
 * (Winograd for 3×3) in place of XNNPACK's, and the training kernels the backend lacks. With the threaded build
 * they run on the calling thread, against the backend's shared memory; the stock kernels they fall back to still
 * use the pool.
 *
 * @throws {@link BackendUnavailableError} unless the wasm backend is the active one (after
 * `await tf.setBackend('wasm')`): the backend sets up its own kernels as it starts, and the engine's fall back to
 * them.
 */
export function installWasmEngineKernels(): WasmEngineKernels {
  if (getBackend() !== 'wasm') {
    throw new BackendUnavailableError(
      'wasm',
      'it is not the active backend yet',
      "Call installWasmEngineKernels() after `await tf.setBackend('wasm')` resolves to true.",
    );
  }
  const kernels = installEngineKernels('wasm');
  const simd = SimdKernels.of(backend() as WasmBackend);
  return { kernels, simd: simd?.variant ?? null, sharedMemory: simd?.sharedMemory ?? false };
}
