import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, installWasmEngineKernels } from './browser.js';
import { initEngine } from './index.js';

describe('installWasmEngineKernels', () => {
  it('refuses to run before the wasm backend is the active one, and says when to call it', async () => {
    await tf.setBackend('cpu');
    expect(() => installWasmEngineKernels()).toThrow(BackendUnavailableError);
    expect(() => installWasmEngineKernels()).toThrow(/after `await tf.setBackend\('wasm'\)`/);
  });

  it('registers the convolution kernels and reports the SIMD build that runs on the private memory', async () => {
    // initEngine loads the wasm backend with its .wasm files from node_modules, as a page's setWasmPaths does.
    await initEngine({ backend: 'wasm' });
    const installed = installWasmEngineKernels();
    expect(installed.kernels).toEqual(expect.arrayContaining(['Conv2D', 'FusedConv2D']));
    expect(installed.simd).toBe(process.env.DECOMPOSE_RELAXED_SIMD === '0' ? 'simd128' : 'relaxed');
    expect(installed.sharedMemory).toBe(false);
    const before = tf.memory().numTensors;
    const y = tf.tidy(() =>
      tf.conv2d(tf.ones([1, 4, 4, 8]) as tf.Tensor4D, tf.ones([3, 3, 8, 8]) as tf.Tensor4D, 1, 'same'),
    );
    const values = y.dataSync(); // [1, 4, 4, 8]: a corner sums 2×2 pixels of 8 ones, its neighbour 2×3
    expect([values[0], values[8]]).toEqual([32, 48]);
    y.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
