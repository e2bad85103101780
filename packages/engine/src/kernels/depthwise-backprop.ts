import {
  backend_util,
  DepthwiseConv2dNativeBackpropFilter,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInput,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { type DepthwiseGeometry, SimdKernels } from './simd.js';
import { UnsupportedKernelInputError, type WasmBackend } from './wasm-backend.js';

// The gradients of a depthwise convolution, which tfjs-backend-wasm does not have. NHWC: x [N, H, W, C], filter
// [kh, kw, C, M], dy [N, Ho, Wo, C·M] with output channel c·M + m. The filter flattened to [kh·kw, C·M] has its
// channels in dy's order, so both gradients are products of contiguous rows of C·M values: the SIMD kernels of
// native/simd.c vectorise over them; without wasm SIMD the same loops run in JavaScript on the heap.

type Shape4 = [number, number, number, number];

function depthwiseInfo(
  kernel: string,
  inShape: Shape4,
  filterShape: Shape4,
  attrs: DepthwiseConv2dNativeBackpropFilterAttrs | DepthwiseConv2dNativeBackpropInputAttrs,
): backend_util.Conv2DInfo {
  const { dataFormat } = attrs as { dataFormat?: string };
  if (dataFormat === 'NCHW') {
    throw new UnsupportedKernelInputError(
      kernel,
      'dataFormat NCHW is not supported on the wasm backend',
      'Use channels-last (NHWC) layers, the tfjs-layers default.',
    );
  }
  return backend_util.computeConv2DInfo(
    inShape,
    filterShape,
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
    'channelsLast',
  );
}

/** The geometry both SIMD kernels take, from tfjs' convolution info. */
function geometryOf(info: backend_util.Conv2DInfo): DepthwiseGeometry {
  return [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.outChannels / info.inChannels,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
    info.dilationHeight,
    info.dilationWidth,
  ];
}

/**
 * The JavaScript input gradient (exported for its test; the kernel uses it where wasm SIMD is missing):
 * dx[n,i,j,c] = Σ_{a,b,m} dy[n, (i + pt − a·dh)/sh, (j + pl − b·dw)/sw, c·M + m] · w[a,b,c,m] over the taps whose
 * output position is whole and inside dy (a gather: every dx value is written once, no zeroing).
 */
export function depthwiseInputGradJs(
  dy: Float32Array,
  w: Float32Array,
  dx: Float32Array,
  g: DepthwiseGeometry,
): void {
  const [batch, height, width, channels, outHeight, outWidth, multiplier, kh, kw, sh, sw, pt, pl, dh, dw] = g;
  const wide = channels * multiplier;
  const sums = new Float64Array(wide);
  for (let n = 0; n < batch; n++) {
    for (let i = 0; i < height; i++) {
      for (let j = 0; j < width; j++) {
        sums.fill(0);
        for (let a = 0; a < kh; a++) {
          const t = i + pt - a * dh;
          if (t < 0 || t % sh !== 0 || t / sh >= outHeight) continue;
          for (let b = 0; b < kw; b++) {
            const u = j + pl - b * dw;
            if (u < 0 || u % sw !== 0 || u / sw >= outWidth) continue;
            const dyBase = ((n * outHeight + t / sh) * outWidth + u / sw) * wide;
            const wBase = (a * kw + b) * wide;
            for (let k = 0; k < wide; k++) {
              sums[k] = (sums[k] as number) + (dy[dyBase + k] as number) * (w[wBase + k] as number);
            }
          }
        }
        const dxBase = ((n * height + i) * width + j) * channels;
        for (let c = 0; c < channels; c++) {
          let sum = 0;
          for (let m = 0; m < multiplier; m++) sum += sums[c * multiplier + m] as number;
          dx[dxBase + c] = sum;
        }
      }
    }
  }
}

/**
 * The JavaScript filter gradient (exported for its test; the kernel uses it where wasm SIMD is missing):
 * dw[a,b,c,m] = Σ_{n,i,j} x[n, i·sh − pt + a·dh, j·sw − pl + b·dw, c] · dy[n,i,j,c·M + m] (zero outside x).
 */
export function depthwiseFilterGradJs(
  x: Float32Array,
  dy: Float32Array,
  dW: Float32Array,
  g: DepthwiseGeometry,
): void {
  const [batch, height, width, channels, outHeight, outWidth, multiplier, kh, kw, sh, sw, pt, pl, dh, dw] = g;
  const wide = channels * multiplier;
  const sums = new Float64Array(kh * kw * wide);
  for (let n = 0; n < batch; n++) {
    for (let i = 0; i < outHeight; i++) {
      for (let a = 0; a < kh; a++) {
        const xi = i * sh - pt + a * dh;
        if (xi < 0 || xi >= height) continue;
        for (let b = 0; b < kw; b++) {
          const tap = (a * kw + b) * wide;
          for (let j = 0; j < outWidth; j++) {
            const xj = j * sw - pl + b * dw;
            if (xj < 0 || xj >= width) continue;
            const xBase = ((n * height + xi) * width + xj) * channels;
            const dyBase = ((n * outHeight + i) * outWidth + j) * wide;
            for (let k = 0; k < wide; k++) {
              const product = (x[xBase + Math.floor(k / multiplier)] as number) * (dy[dyBase + k] as number);
              sums[tap + k] = (sums[tap + k] as number) + product;
            }
          }
        }
      }
    }
  }
  dW.set(sums);
}

const depthwiseBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const depthwiseAttrs = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  const info = depthwiseInfo(
    DepthwiseConv2dNativeBackpropInput,
    depthwiseAttrs.inputShape,
    filter.shape as Shape4,
    depthwiseAttrs,
  );
  const dx = wasm.makeOutput([info.batchSize, info.inHeight, info.inWidth, info.inChannels], 'float32');
  const geometry = geometryOf(info);
  const simd = SimdKernels.of(wasm);
  if (simd !== null) {
    simd.depthwiseInputGrad(dy, filter, dx, geometry);
    return dx;
  }
  depthwiseInputGradJs(
    wasm.typedArrayFromHeap(dy) as Float32Array,
    wasm.typedArrayFromHeap(filter) as Float32Array,
    wasm.typedArrayFromHeap(dx) as Float32Array,
    geometry,
  );
  return dx;
};

const depthwiseBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const depthwiseAttrs = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = depthwiseInfo(
    DepthwiseConv2dNativeBackpropFilter,
    x.shape as Shape4,
    depthwiseAttrs.filterShape,
    depthwiseAttrs,
  );
  const dW = wasm.makeOutput(depthwiseAttrs.filterShape, 'float32');
  const geometry = geometryOf(info);
  const simd = SimdKernels.of(wasm);
  if (simd !== null) {
    simd.depthwiseFilterGrad(x, dy, dW, geometry);
    return dW;
  }
  depthwiseFilterGradJs(
    wasm.typedArrayFromHeap(x) as Float32Array,
    wasm.typedArrayFromHeap(dy) as Float32Array,
    wasm.typedArrayFromHeap(dW) as Float32Array,
    geometry,
  );
  return dW;
};

/** `DepthwiseConv2dNativeBackpropInput` for the wasm backend (which has none). */
export const wasmDepthwiseBackpropInputConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput,
};

/** `DepthwiseConv2dNativeBackpropFilter` for the wasm backend (which has none). */
export const wasmDepthwiseBackpropFilterConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter,
};
