import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import {
  type ConvCase,
  conv,
  onWasmAndCpu,
  parityCases,
  relativeError,
  seededValues,
  shapesOf,
} from './parity-helpers.js';
import { SimdKernels } from './simd.js';
import type { WasmBackend } from './wasm-backend.js';

/** A case's seeded input, filters and bias, and its top/left padding and strides, for calls of the SIMD kernels. */
interface SeededConv {
  x: tf.Tensor;
  w: tf.Tensor;
  b: tf.Tensor;
  top: number;
  left: number;
  strides: [number, number];
}

/**
 * The output values of each of `runs` on case `c`'s seeded tensors (each run writes a fresh output of the case's
 * shape), all inside one tidy.
 */
function seededOutputs(
  backend: WasmBackend,
  c: ConvCase,
  runs: readonly ((conv: SeededConv, y: tf.TensorInfo) => void)[],
): Float32Array[] {
  const shapes = shapesOf(c);
  const info = tf.backend_util.computeConv2DInfo(shapes.x, shapes.w, c.stride, 1, c.pad);
  return tf.tidy(() => {
    const seeded: SeededConv = {
      x: tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.x), 1), shapes.x),
      w: tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.w), 2), shapes.w),
      b: tf.tensor1d(seededValues(c.outChannels, 3)),
      top: info.padInfo.top,
      left: info.padInfo.left,
      strides: [info.strideHeight, info.strideWidth],
    };
    return runs.map((run) => {
      const y = backend.makeOutput(shapes.y, 'float32');
      run(seeded, y);
      return tf.engine().makeTensorFromTensorInfo(y).dataSync() as Float32Array;
    });
  }) as Float32Array[];
}

/** conv(x, w) and relu(conv(x, w) + b) (the layers' fused path) for a case, as flat arrays. */
function forward(c: ConvCase): { plain: Float32Array; fused: Float32Array } {
  const shapes = shapesOf(c);
  return tf.tidy(() => {
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.x), 1), shapes.x);
    const w = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.w), 2), shapes.w);
    const b = tf.tensor1d(seededValues(c.outChannels, 3));
    const plain = tf.conv2d(x, w, c.stride, c.pad);
    const fused = tf.fused.conv2d({
      x,
      filter: w,
      strides: c.stride,
      pad: c.pad,
      bias: b,
      activation: 'relu',
    });
    return { plain: plain.dataSync() as Float32Array, fused: fused.dataSync() as Float32Array };
  });
}

describe('wasm Conv2D / FusedConv2D (SIMD where C_out is a multiple of 4 and C_in ≤ 64)', () => {
  it.each(parityCases)('match cpu for $name', async (c) => {
    const { wasm, cpu } = await onWasmAndCpu(() => forward(c));
    expect(relativeError(wasm.plain, cpu.plain)).toBeLessThan(1e-5);
    expect(relativeError(wasm.fused, cpu.fused)).toBeLessThan(1e-5);
  });

  it.each(['relu6', 'elu'] as const)(
    'fall back to XNNPACK for a %s activation, with the same result',
    async (activation) => {
      const c = conv('16→8 s1', 1, 8, 16, 8, 3, 1);
      const shapes = shapesOf(c);
      const run = () =>
        tf.tidy(() => {
          const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.x), 1), shapes.x);
          const w = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.w), 2), shapes.w);
          return tf.fused
            .conv2d({ x, filter: w, pad: 'same', strides: 1, activation })
            .dataSync() as Float32Array;
        });
      const { wasm, cpu } = await onWasmAndCpu(run);
      expect(relativeError(wasm, cpu)).toBeLessThan(1e-5);
    },
  );

  it('leak no tensors', async () => {
    await initEngine({ backend: 'wasm' });
    const c = conv('16→4', 2, 8, 16, 4, 3, 1);
    forward(c);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) forward(c);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the two SIMD builds (relaxed SIMD, SIMD128)', () => {
  // The parity tests above run the build the runtime picks (relaxed SIMD on Node 20); this holds the SIMD128
  // fallback, which runtimes without relaxed SIMD run, to the same results.
  it.each(parityCases.filter((c) => c.outChannels % 4 === 0 && c.inChannels <= 64))(
    'agree on $name',
    async (c) => {
      await initEngine({ backend: 'wasm' });
      const backend = tf.backend() as WasmBackend;
      const builds = [SimdKernels.build(backend, 'relaxed'), SimdKernels.build(backend, 'simd128')];
      expect(builds).not.toContain(null);
      const before = tf.memory().numTensors;
      const [relaxed, simd128] = seededOutputs(
        backend,
        c,
        builds.map(
          (simd) =>
            ({ x, w, b, top, left, strides }, y) =>
              simd?.conv2d(x, w, b, y, strides, top, left, 'relu', false),
        ),
      );
      expect(relativeError(simd128!, relaxed!)).toBeLessThan(1e-5);
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});

describe('the Winograd convolution', () => {
  const winogradCases = parityCases.filter(
    (c) =>
      c.kernel[0] === 3 && c.kernel[1] === 3 && c.stride === 1 && c.inChannels % 4 === 0 && c.inChannels >= 8,
  );

  it('covers odd, padded, valid, non-square and padded-output cases', () => {
    expect(winogradCases.length).toBeGreaterThanOrEqual(8);
    expect(winogradCases.some((c) => c.outChannels % 4 !== 0)).toBe(true);
  });

  it.each(winogradCases)('agrees with the direct SIMD convolution, in both builds, on $name', async (c) => {
    await initEngine({ backend: 'wasm' });
    const backend = tf.backend() as WasmBackend;
    const builds = [SimdKernels.build(backend, 'relaxed'), SimdKernels.build(backend, 'simd128')];
    expect(builds).not.toContain(null);
    const before = tf.memory().numTensors;
    const [direct, ...winograd] = seededOutputs(backend, c, [
      ({ x, w, b, top, left }, y) => builds[1]?.conv2d(x, w, b, y, [1, 1], top, left, 'relu', false),
      ...builds.map(
        (simd) =>
          ({ x, w, b, top, left }: SeededConv, y: tf.TensorInfo) =>
            simd?.conv2dWinograd(x, w, b, y, top, left, 'relu'),
      ),
    ]);
    for (const result of winograd) expect(relativeError(result, direct!)).toBeLessThan(1e-5);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a filter that is not 3×3', async () => {
    await initEngine({ backend: 'wasm' });
    const backend = tf.backend() as WasmBackend;
    const simd = SimdKernels.of(backend);
    tf.tidy(() => {
      const x = tf.zeros([1, 6, 6, 8]);
      const w = tf.zeros([5, 5, 8, 8]);
      const y = backend.makeOutput([1, 6, 6, 8], 'float32');
      expect(() => simd?.conv2dWinograd(x, w, null, y, 2, 2, 'linear')).toThrow(/3×3 filter.*5×5×8×8/);
      tf.engine().makeTensorFromTensorInfo(y).dispose();
    });
  });
});

interface MatMulCase {
  rows: number;
  depth: number;
  columns: number;
}

/** a·b, relu(a·b + bias) and aᵀ·c (c: rows × columns) for a case. */
function products({
  rows,
  depth,
  columns,
}: MatMulCase): Record<'plain' | 'fused' | 'transposedLeft', Float32Array> {
  return tf.tidy(() => {
    const a = tf.tensor2d(seededValues(rows * depth, 1), [rows, depth]);
    const b = tf.tensor2d(seededValues(depth * columns, 2), [depth, columns]);
    const bias = tf.tensor1d(seededValues(columns, 3));
    const c = tf.tensor2d(seededValues(rows * columns, 4), [rows, columns]);
    const fused = tf.fused.matMul({
      a: tf.expandDims(a, 0),
      b: tf.expandDims(b, 0),
      bias,
      activation: 'relu',
    });
    expect(fused.shape).toEqual([1, rows, columns]);
    return {
      plain: tf.matMul(a, b).dataSync() as Float32Array,
      fused: fused.dataSync() as Float32Array,
      transposedLeft: tf.matMul(a, c, true, false).dataSync() as Float32Array,
    };
  });
}

describe('wasm BatchMatMul / _FusedMatMul (SIMD for a small right factor and for aᵀ·b)', () => {
  it.each([
    { rows: 1001, depth: 4, columns: 16 },
    { rows: 999, depth: 16, columns: 4 },
    { rows: 257, depth: 8, columns: 36 },
    { rows: 3, depth: 64, columns: 64 },
    { rows: 4096, depth: 32, columns: 64 }, // aᵀ·c in 64 rows of 64
    { rows: 1003, depth: 32, columns: 8 }, // a·b in one group of 8 columns, rows left over
    { rows: 250, depth: 8, columns: 28 }, // groups of 16, 8 and 4 columns
    { rows: 999, depth: 8, columns: 12 }, // aᵀ·c in 27 rows of 37
    { rows: 64, depth: 7, columns: 10 }, // columns not a multiple of 4: XNNPACK
  ])('match cpu for $rows×$depth·$depth×$columns', async (c) => {
    const { wasm, cpu } = await onWasmAndCpu(() => products(c));
    expect(relativeError(wasm.plain, cpu.plain)).toBeLessThan(1e-5);
    expect(relativeError(wasm.fused, cpu.fused)).toBeLessThan(1e-5);
    expect(relativeError(wasm.transposedLeft, cpu.transposedLeft)).toBeLessThan(1e-5);
  });

  it('leaks no tensors', async () => {
    await initEngine({ backend: 'wasm' });
    const c = { rows: 250, depth: 8, columns: 28 };
    products(c);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) products(c);
    expect(tf.memory().numTensors).toBe(before);
  });
});
