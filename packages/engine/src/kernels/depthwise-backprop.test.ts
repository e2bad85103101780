import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine, UnsupportedKernelInputError } from '../index.js';
import { depthwiseFilterGradJs, depthwiseInputGradJs } from './depthwise-backprop.js';
import { onWasmAndCpu, type Pad, relativeError, type Shape4, seededValues } from './parity-helpers.js';
import type { DepthwiseGeometry } from './simd.js';

interface DepthwiseCase {
  name: string;
  batch: number;
  height: number;
  width?: number;
  channels: number;
  multiplier: number;
  kernel: [number, number];
  stride: number;
  pad: Pad;
  dilation?: number;
}

const dw = (
  name: string,
  batch: number,
  height: number,
  channels: number,
  multiplier: number,
  kernel: number | [number, number],
  stride: number,
  pad: Pad = 'same',
  extra: Partial<DepthwiseCase> = {},
): DepthwiseCase => ({
  name,
  batch,
  height,
  channels,
  multiplier,
  kernel: typeof kernel === 'number' ? [kernel, kernel] : kernel,
  stride,
  pad,
  ...extra,
});

// MobileNetV2's depthwise shapes (scaled down in batch), multipliers, odd channel counts (the SIMD tails) and the
// padding corner cases.
const cases: DepthwiseCase[] = [
  dw('mobilenet 3×3 s1 @16, 32 ch', 2, 16, 32, 1, 3, 1),
  dw('mobilenet 3×3 s2 @16, 96 ch', 2, 16, 96, 1, 3, 2),
  dw('mobilenet 3×3 s1 @8, 144 ch', 1, 8, 144, 1, 3, 1),
  dw('3×3 s2 @9 (odd), 24 ch', 2, 9, 24, 1, 3, 2),
  dw('3×3 s1 valid', 2, 10, 8, 1, 3, 1, 'valid'),
  dw('3×3 s2 valid', 2, 11, 8, 1, 3, 2, 'valid'),
  dw('5×5 s2 same', 2, 12, 16, 1, 5, 2),
  dw('3×1 s1 same', 2, 8, 8, 1, [3, 1], 1),
  dw('1×3 s2 same', 2, 8, 8, 1, [1, 3], 2),
  dw('3 channels (scalar tail)', 2, 8, 3, 1, 3, 1),
  dw('21 channels (vector + scalar tails)', 2, 7, 21, 1, 3, 2),
  dw('multiplier 2', 2, 8, 8, 2, 3, 1),
  dw('multiplier 3, s2', 2, 9, 5, 3, 3, 2),
  dw('multiplier 4, valid', 2, 8, 4, 4, 3, 1, 'valid'),
  dw('explicit padding', 2, 9, 8, 1, 3, 2, [
    [0, 0],
    [2, 1],
    [0, 2],
    [0, 0],
  ]),
  dw('padding wider than the kernel', 2, 6, 4, 1, 3, 1, [
    [0, 0],
    [3, 0],
    [0, 4],
    [0, 0],
  ]),
  dw('non-square, s2', 2, 9, 8, 1, 3, 2, 'same', { width: 14 }),
  dw('dilation 2, same', 2, 10, 8, 1, 3, 1, 'same', { dilation: 2 }),
  dw('dilation 3, valid, multiplier 2', 2, 12, 4, 2, 3, 1, 'valid', { dilation: 3 }),
  dw('dilation 2, 5×5, 20 ch', 1, 12, 20, 1, 5, 1, 'same', { dilation: 2 }),
];

function shapesOf(c: DepthwiseCase): { x: Shape4; w: Shape4; y: Shape4 } {
  const x: Shape4 = [c.batch, c.height, c.width ?? c.height, c.channels];
  const w: Shape4 = [...c.kernel, c.channels, c.multiplier];
  const info = tf.backend_util.computeConv2DInfo(x, w, c.stride, c.dilation ?? 1, c.pad, undefined, true);
  return { x, w, y: info.outShape };
}

interface Grads {
  dx: Float32Array;
  dw: Float32Array;
}

/** Both gradient kernels, run directly for a random output gradient. */
function depthwiseKernels(c: DepthwiseCase): Grads {
  const shapes = shapesOf(c);
  return tf.tidy(() => {
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.x), 1), shapes.x);
    const w = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.w), 2), shapes.w);
    const dy = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.y), 3), shapes.y);
    const attrs = { strides: c.stride, pad: c.pad, dilations: c.dilation ?? 1 };
    const dx = tf
      .engine()
      .runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter: w }, { ...attrs, inputShape: shapes.x });
    const dW = tf
      .engine()
      .runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape: shapes.w });
    return {
      dx: (dx as tf.Tensor).dataSync() as Float32Array,
      dw: (dW as tf.Tensor).dataSync() as Float32Array,
    };
  });
}

/**
 * The cpu reference. tfjs-backend-cpu's depthwise gradients ignore dilation, so a dilated case is computed as the
 * undilated convolution with the filter's taps spread apart by zeros, and the filter gradient read at the taps.
 */
function cpuReference(c: DepthwiseCase): Grads {
  const d = c.dilation ?? 1;
  if (d === 1) return depthwiseKernels(c);
  const shapes = shapesOf(c);
  const [kh, kw, channels, multiplier] = shapes.w;
  const spread: [number, number] = [(kh - 1) * d + 1, (kw - 1) * d + 1];
  const w = seededValues(tf.util.sizeFromShape(shapes.w), 2);
  const wide = channels * multiplier;
  const spreadW = new Float32Array(spread[0] * spread[1] * wide);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      spreadW.set(
        w.subarray((a * kw + b) * wide, (a * kw + b + 1) * wide),
        (a * d * spread[1] + b * d) * wide,
      );
    }
  }
  return tf.tidy(() => {
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.x), 1), shapes.x);
    const filterShape: Shape4 = [...spread, channels, multiplier];
    const filter = tf.tensor4d(spreadW, filterShape);
    const dy = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.y), 3), shapes.y);
    const attrs = { strides: c.stride, pad: c.pad, dilations: 1 };
    const dx = tf
      .engine()
      .runKernel('DepthwiseConv2dNativeBackpropInput', { dy, filter }, { ...attrs, inputShape: shapes.x });
    const spreadDw = (
      tf
        .engine()
        .runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy }, { ...attrs, filterShape }) as tf.Tensor
    ).dataSync();
    const dW = new Float32Array(tf.util.sizeFromShape(shapes.w));
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const from = (a * d * spread[1] + b * d) * wide;
        dW.set(spreadDw.subarray(from, from + wide), (a * kw + b) * wide);
      }
    }
    return { dx: (dx as tf.Tensor).dataSync() as Float32Array, dw: dW };
  });
}

/** The JavaScript loops (the kernels' fallback without wasm SIMD) on plain arrays. */
function depthwiseJs(c: DepthwiseCase): Grads {
  const shapes = shapesOf(c);
  const info = tf.backend_util.computeConv2DInfo(
    shapes.x,
    shapes.w,
    c.stride,
    c.dilation ?? 1,
    c.pad,
    undefined,
    true,
  );
  const geometry: DepthwiseGeometry = [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    c.multiplier,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
    info.dilationHeight,
    info.dilationWidth,
  ];
  const x = seededValues(tf.util.sizeFromShape(shapes.x), 1);
  const w = seededValues(tf.util.sizeFromShape(shapes.w), 2);
  const dy = seededValues(tf.util.sizeFromShape(shapes.y), 3);
  const dx = new Float32Array(x.length);
  const dW = new Float32Array(w.length);
  depthwiseInputGradJs(dy, w, dx, geometry);
  depthwiseFilterGradJs(x, dy, dW, geometry);
  return { dx, dw: dW };
}

/** Gradients of Σ depthwiseConv2d(x, w)·r through tf.grads, the route training takes. */
function depthwiseGrads(c: DepthwiseCase): Grads {
  const shapes = shapesOf(c);
  return tf.tidy(() => {
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.x), 1), shapes.x);
    const w = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.w), 2), shapes.w);
    const r = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.y), 4), shapes.y);
    const loss = (xs: tf.Tensor, ws: tf.Tensor) =>
      tf.sum(tf.mul(tf.depthwiseConv2d(xs as tf.Tensor4D, ws as tf.Tensor4D, c.stride, c.pad as 'same'), r));
    const [dx, dW] = tf.grads(loss)([x, w]) as [tf.Tensor, tf.Tensor];
    return { dx: dx.dataSync() as Float32Array, dw: dW.dataSync() as Float32Array };
  });
}

describe('wasm DepthwiseConv2dNativeBackpropInput / DepthwiseConv2dNativeBackpropFilter', () => {
  it.each(cases)('match cpu for $name', async (c) => {
    await initEngine({ backend: 'wasm' });
    const wasm = depthwiseKernels(c);
    await initEngine({ backend: 'cpu' });
    const cpu = cpuReference(c);
    expect(relativeError(wasm.dx, cpu.dx)).toBeLessThan(1e-5);
    expect(relativeError(wasm.dw, cpu.dw)).toBeLessThan(1e-5);
    // The JavaScript fallback computes the same.
    const js = depthwiseJs(c);
    expect(relativeError(js.dx, cpu.dx)).toBeLessThan(1e-5);
    expect(relativeError(js.dw, cpu.dw)).toBeLessThan(1e-5);
  });

  it.each([
    dw('3×3 s2 same, 16 ch', 2, 16, 16, 1, 3, 2),
    dw('3×3 s1 valid, multiplier 2', 2, 9, 6, 2, 3, 1, 'valid'),
  ])('carry the depthwiseConv2d gradient ($name)', async (c) => {
    const { wasm, cpu } = await onWasmAndCpu(() => depthwiseGrads(c));
    expect(relativeError(wasm.dx, cpu.dx)).toBeLessThan(1e-5);
    expect(relativeError(wasm.dw, cpu.dw)).toBeLessThan(1e-5);
  });

  it('leak no tensors over repeated gradients on wasm', async () => {
    await initEngine({ backend: 'wasm' });
    const c = dw('leak', 2, 8, 8, 2, 3, 2);
    depthwiseGrads(c);
    depthwiseKernels(c);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) {
      depthwiseGrads(c);
      depthwiseKernels(c);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reject NCHW with a typed error', async () => {
    await initEngine({ backend: 'wasm' });
    const x = tf.zeros([1, 2, 4, 4]);
    const dy = tf.zeros([1, 2, 4, 4]);
    const run = () =>
      tf
        .engine()
        .runKernel(
          'DepthwiseConv2dNativeBackpropFilter',
          { x, dy },
          { strides: 1, pad: 'same', dilations: 1, dataFormat: 'NCHW', filterShape: [3, 3, 2, 1] },
        );
    expect(run).toThrow(UnsupportedKernelInputError);
    tf.dispose([x, dy]);
  });
});
