import {
  AvgPoolGrad,
  type AvgPoolGradAttrs,
  backend_util,
  type KernelConfig,
  type KernelFunc,
  MaxPoolGrad,
  type MaxPoolGradAttrs,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { SimdKernels } from './simd.js';
import { runWasmKernel, type WasmBackend } from './wasm-backend.js';

/**
 * `MaxPoolGrad` (NHWC) on the heap: each window's dy goes to the first position (row-major) holding its maximum,
 * as on the cpu backend. tfjs-backend-wasm 4.22's own kernel returns wrong gradients (relative error ~1 against
 * cpu, for any batch), so MaxPooling2D could not train there. Windows scan vectors of channels together.
 */
const maxPoolGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const dx = wasm.makeOutput(input.shape, 'float32');
  const x = wasm.typedArrayFromHeap(input) as Float32Array;
  const g = wasm.typedArrayFromHeap(dy) as Float32Array;
  const out = wasm.typedArrayFromHeap(dx) as Float32Array;
  out.fill(0);
  const best = new Float32Array(channels);
  const where = new Int32Array(channels);
  for (let n = 0; n < batchSize; n++) {
    for (let i = 0; i < outHeight; i++) {
      const top = i * strideHeight - info.padInfo.top;
      const rowStart = Math.max(0, top);
      const rowEnd = Math.min(inHeight, top + fh);
      for (let j = 0; j < outWidth; j++) {
        const left = j * strideWidth - info.padInfo.left;
        const colStart = Math.max(0, left);
        const colEnd = Math.min(inWidth, left + fw);
        best.fill(Number.NEGATIVE_INFINITY);
        where.fill(-1);
        for (let r = rowStart; r < rowEnd; r++) {
          for (let c = colStart; c < colEnd; c++) {
            const base = ((n * inHeight + r) * inWidth + c) * channels;
            for (let d = 0; d < channels; d++) {
              const value = x[base + d] as number;
              if (value > (best[d] as number)) {
                best[d] = value;
                where[d] = base + d;
              }
            }
          }
        }
        const dyBase = ((n * outHeight + i) * outWidth + j) * channels;
        for (let d = 0; d < channels; d++) {
          const at = where[d] as number;
          if (at >= 0) out[at] = (out[at] as number) + (g[dyBase + d] as number);
        }
      }
    }
  }
  return dx;
};

/** {@link maxPoolGrad} for the wasm backend, replacing its own (which is wrong). */
export const wasmMaxPoolGradConfig: KernelConfig = {
  kernelName: MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad,
};

/**
 * `AvgPoolGrad` (NHWC) on the engine's SIMD kernel: tfjs-backend-wasm 4.22's takes 9 ms for the 2×2 pool of a
 * ResNet shortcut at [128, 32, 32, 16], a few percent of a train step. Without the SIMD module, the backend's own.
 */
const avgPoolGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const simd = SimdKernels.of(wasm);
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  if (simd === null || dy.dtype !== 'float32') return runWasmKernel(wasm, AvgPoolGrad, inputs, attrs ?? {});
  const { filterSize, strides, pad } = attrs as unknown as AvgPoolGradAttrs;
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
  );
  const dx = wasm.makeOutput(input.shape, 'float32');
  simd.avgPoolGrad(dy, dx, info);
  return dx;
};

/** {@link avgPoolGrad} for the wasm backend. */
export const wasmAvgPoolGradConfig: KernelConfig = {
  kernelName: AvgPoolGrad,
  backendName: 'wasm',
  kernelFunc: avgPoolGrad,
};
