import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { SimdKernels } from './simd.js';
import {
  RELAXED_SIMD_MODULE_BASE64,
  SHARED_RELAXED_SIMD_MODULE_BASE64,
  SHARED_SIMD_MODULE_BASE64,
  SIMD_MODULE_BASE64,
  SIMD_SOURCE_SHA256,
} from './simd-module.js';
import type { WasmBackend } from './wasm-backend.js';

interface WebAssemblyApi {
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: object };
  LinkError: new () => Error;
}

describe('SIMD kernels', () => {
  it('were built from the native/simd.c in the repository (run `node native/build.mjs` after editing it)', async () => {
    const source = await readFile(new URL('../../native/simd.c', import.meta.url));
    expect(createHash('sha256').update(source).digest('hex')).toBe(SIMD_SOURCE_SHA256);
  });

  it('run on the wasm backend of Node, on its memory, after that memory grows', async () => {
    await initEngine({ backend: 'wasm' });
    const simd = SimdKernels.of(tf.backend() as WasmBackend);
    expect(simd).not.toBeNull();
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]);
    const grow = tf.zeros([64 * 1024 * 1024]); // forces the heap to grow past its initial size
    const moments = simd?.channelMoments(x, null, 4);
    expect(Array.from(moments?.sum ?? [])).toEqual([6, 8, 10, 12]);
    expect(Array.from(moments?.products ?? [])).toEqual([26, 40, 58, 80]);
    tf.dispose([x, grow]);
  });

  it('come built for a private memory and for the shared one of the threaded build (up to 4 GiB)', () => {
    // The WebAssembly API, typed here because the project compiles without the DOM library.
    const wasm = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;
    const privateMemory = new wasm.Memory({ initial: 1 });
    const sharedMemory = new wasm.Memory({ initial: 1, maximum: 65536, shared: true });
    const instantiate = (base64: string, memory: object) =>
      new wasm.Instance(new wasm.Module(Buffer.from(base64, 'base64')), { env: { memory } });
    for (const [privateBuild, sharedBuild] of [
      [SIMD_MODULE_BASE64, SHARED_SIMD_MODULE_BASE64],
      [RELAXED_SIMD_MODULE_BASE64, SHARED_RELAXED_SIMD_MODULE_BASE64],
    ] as const) {
      expect(instantiate(privateBuild, privateMemory).exports).toHaveProperty('conv2d_winograd');
      expect(instantiate(sharedBuild, sharedMemory).exports).toHaveProperty('conv2d_winograd');
      expect(() => instantiate(privateBuild, sharedMemory)).toThrow(wasm.LinkError);
      expect(() => instantiate(sharedBuild, privateMemory)).toThrow(wasm.LinkError);
    }
  });
});
