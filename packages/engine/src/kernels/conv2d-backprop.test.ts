import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { initEngine, UnsupportedKernelInputError } from '../index.js';
import {
  type ConvCase,
  conv,
  onWasmAndCpu,
  parityCases,
  relativeError,
  seededValues,
  shapesOf,
} from './parity-helpers.js';
import { winogradFilterGradApplies } from './simd.js';

interface ConvGrads {
  dx: Float32Array;
  dw: Float32Array;
  db?: Float32Array;
}

/** Both backprop kernels run directly for a random output gradient (no forward pass: the cpu one is slow). */
function backpropKernels(c: ConvCase): ConvGrads {
  const shapes = shapesOf(c);
  return tf.tidy(() => {
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.x), 1), shapes.x);
    const w = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.w), 2), shapes.w);
    const dy = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.y), 3), shapes.y);
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC' };
    const dx = tf.engine().runKernel(
      'Conv2DBackpropInput',
      { dy, filter: w },
      {
        ...attrs,
        inputShape: shapes.x,
      },
    ) as tf.Tensor;
    const dw = tf.engine().runKernel(
      'Conv2DBackpropFilter',
      { x, dy },
      {
        ...attrs,
        filterShape: shapes.w,
      },
    ) as tf.Tensor;
    return { dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  });
}

/** Gradients of Σ conv(x, w)·r through tf.grads, the route training takes (fused: with bias and relu). */
function convGrads(c: ConvCase, fused: boolean): ConvGrads {
  const shapes = shapesOf(c);
  return tf.tidy(() => {
    const x = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.x), 1), shapes.x);
    const w = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.w), 2), shapes.w);
    const b = tf.tensor1d(seededValues(c.outChannels, 3));
    const r = tf.tensor4d(seededValues(tf.util.sizeFromShape(shapes.y), 4), shapes.y);
    const forward = (xs: tf.Tensor, ws: tf.Tensor, bs: tf.Tensor): tf.Tensor4D =>
      fused
        ? tf.fused.conv2d({
            x: xs as tf.Tensor4D,
            filter: ws as tf.Tensor4D,
            strides: c.stride,
            pad: c.pad,
            bias: bs,
            activation: 'relu',
          })
        : tf.conv2d(xs as tf.Tensor4D, ws as tf.Tensor4D, c.stride, c.pad);
    const loss = (xs: tf.Tensor, ws: tf.Tensor, bs: tf.Tensor) => tf.sum(tf.mul(forward(xs, ws, bs), r));
    const [dx, dw, db] = tf.grads(fused ? loss : (xs: tf.Tensor, ws: tf.Tensor) => loss(xs, ws, b))(
      fused ? [x, w, b] : [x, w],
    ) as [tf.Tensor, tf.Tensor, tf.Tensor | undefined];
    return {
      dx: dx.dataSync() as Float32Array,
      dw: dw.dataSync() as Float32Array,
      ...(db ? { db: db.dataSync() as Float32Array } : {}),
    };
  });
}

describe('wasm Conv2DBackpropFilter / Conv2DBackpropInput', () => {
  it('check the Winograd filter gradient on odd, padded, valid and non-square cases', () => {
    const winograd = parityCases.filter((c) =>
      winogradFilterGradApplies(c.kernel[0], c.kernel[1], [c.stride, c.stride], c.inChannels, c.outChannels),
    );
    expect(winograd.length).toBeGreaterThanOrEqual(6);
    expect(winograd.some((c) => c.pad === 'valid')).toBe(true);
    expect(winograd.some((c) => Array.isArray(c.pad))).toBe(true);
    expect(winograd.some((c) => shapesOf(c).y[1] % 2 === 1)).toBe(true);
    expect(winograd.some((c) => shapesOf(c).y[2] % 2 === 1 && c.width !== undefined)).toBe(true);
    expect(winograd.some((c) => c.outChannels > 16)).toBe(true);
  });

  it.each(parityCases)('match cpu for $name', async (c) => {
    const { wasm, cpu } = await onWasmAndCpu(() => backpropKernels(c));
    expect(relativeError(wasm.dx, cpu.dx)).toBeLessThan(1e-4);
    expect(relativeError(wasm.dw, cpu.dw)).toBeLessThan(1e-4);
  });

  it.each([false, true])('carry the conv2d gradient (fused bias + relu: %s)', async (fused) => {
    const c = conv('16→32 s2', 2, 16, 16, 32, 3, 2);
    const { wasm, cpu } = await onWasmAndCpu(() => convGrads(c, fused));
    expect(relativeError(wasm.dx, cpu.dx)).toBeLessThan(1e-4);
    expect(relativeError(wasm.dw, cpu.dw)).toBeLessThan(1e-4);
    if (fused) expect(relativeError(wasm.db as Float32Array, cpu.db as Float32Array)).toBeLessThan(1e-4);
  });

  it('leak neither tensors nor backend buffers (phase-by-phase and Winograd routes)', async () => {
    await initEngine({ backend: 'wasm' });
    const routes = ['resnet20 16→32 s2 @32', '3×3 s1 padding wider than the kernel', 'resnet20 16→16 s1 @32'];
    const chosen = parityCases.filter((c) => routes.includes(c.name));
    expect(chosen).toHaveLength(routes.length);
    for (const c of chosen) backpropKernels(c);
    const before = { tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() };
    for (const c of chosen) backpropKernels(c);
    expect({ tensors: tf.memory().numTensors, buffers: tf.engine().backend.numDataIds() }).toEqual(before);
  });

  it('reject NCHW with a typed error', async () => {
    await initEngine({ backend: 'wasm' });
    const x = tf.zeros([1, 2, 4, 4]);
    const dy = tf.zeros([1, 3, 4, 4]);
    const run = () =>
      tf.engine().runKernel(
        'Conv2DBackpropFilter',
        { x, dy },
        {
          strides: 1,
          pad: 'same',
          dataFormat: 'NCHW',
          filterShape: [3, 3, 2, 3],
        },
      );
    expect(run).toThrow(UnsupportedKernelInputError);
    expect(run).toThrow(/NCHW/);
    tf.dispose([x, dy]);
  });
});
