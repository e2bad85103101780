import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendUnavailableError, initEngine, UnknownBackendError } from './index.js';

const savedEnv = process.env.DECOMPOSE_BACKEND;
afterEach(() => {
  if (savedEnv === undefined) delete process.env.DECOMPOSE_BACKEND;
  else process.env.DECOMPOSE_BACKEND = savedEnv;
});

async function tensorflowLoads(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

describe('initEngine', () => {
  it('picks the best available backend and says why better ones were skipped', async () => {
    delete process.env.DECOMPOSE_BACKEND;
    const info = await initEngine();
    expect(tf.getBackend()).toBe(info.backend);
    if (await tensorflowLoads()) {
      expect(info.backend).toBe('tensorflow');
      expect(info.skipped).toEqual([]);
    } else {
      expect(info.backend).toBe('wasm');
      expect(info.skipped.map((s) => s.backend)).toEqual(['tensorflow']);
      // A reason in a few words; the underlying error and the fix beside it.
      expect(info.skipped[0]?.reason).toMatch(/^tfjs-node (not installed|native addon missing)$/);
      expect(info.skipped[0]?.detail).toBeTypeOf('string');
      expect(info.skipped[0]?.fix).toMatch(/DECOMPOSE_BACKEND=wasm/);
    }
  });

  it('honours DECOMPOSE_BACKEND', async () => {
    process.env.DECOMPOSE_BACKEND = 'cpu';
    const info = await initEngine();
    expect(info).toMatchObject({ backend: 'cpu', threads: 1, skipped: [] });
    expect(tf.getBackend()).toBe('cpu');
    process.env.DECOMPOSE_BACKEND = 'wasm';
    expect((await initEngine()).backend).toBe('wasm');
  });

  it('lets the option override the environment', async () => {
    process.env.DECOMPOSE_BACKEND = 'wasm';
    expect((await initEngine({ backend: 'cpu' })).backend).toBe('cpu');
  });

  it('runs a convolution on the chosen backend', async () => {
    await initEngine({ backend: 'wasm' });
    const y = tf.tidy(() =>
      tf.conv2d(tf.ones([1, 4, 4, 2]) as tf.Tensor4D, tf.ones([3, 3, 2, 1]) as tf.Tensor4D, 1, 'same'),
    );
    expect(Array.from(await y.data())[5]).toBe(18);
    y.dispose();
  });

  it('rejects an unknown backend name with the list of known ones', async () => {
    process.env.DECOMPOSE_BACKEND = 'webgpu';
    await expect(initEngine()).rejects.toThrow(UnknownBackendError);
    await expect(initEngine()).rejects.toThrow(/tensorflow, wasm, cpu/);
  });

  it('throws a typed error naming the backend and the fix when a forced backend is unavailable', async () => {
    if (await tensorflowLoads()) return;
    process.env.DECOMPOSE_BACKEND = 'tensorflow';
    const error = await initEngine().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as BackendUnavailableError).backend).toBe('tensorflow');
    expect((error as Error).message).toMatch(/DECOMPOSE_BACKEND=wasm/);
  });
});
