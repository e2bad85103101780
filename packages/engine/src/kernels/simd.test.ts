import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { SimdKernels } from './simd.js';
import { SIMD_SOURCE_SHA256 } from './simd-module.js';
import type { WasmBackend } from './wasm-backend.js';

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
});
