import {
  backend_util,
  Conv2D,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { runSimdConv } from './conv2d-forward.js';
import { type InputGradPhase, SimdKernels } from './simd.js';
import { release, runWasmKernel, UnsupportedKernelInputError, type WasmBackend } from './wasm-backend.js';

// Both gradients are rewritten as forward convolutions (the engine's SIMD one where it applies, else the wasm
// backend's XNNPACK Conv2D), or run on the engine's SIMD gradient kernels.

type Shape4 = [number, number, number, number];
type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

function explicitPad(top: number, bottom: number, left: number, right: number): ExplicitPad {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

function convInfoFor(
  kernel: string,
  xShape: Shape4,
  filterShape: Shape4,
  attrs: Conv2DBackpropFilterAttrs | Conv2DBackpropInputAttrs,
): backend_util.Conv2DInfo {
  if (attrs.dataFormat === 'NCHW') {
    throw new UnsupportedKernelInputError(
      kernel,
      'dataFormat NCHW is not supported on the wasm backend',
      'Use channels-last (NHWC) layers, the tfjs-layers default.',
    );
  }
  return backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

function conv2d(
  backend: WasmBackend,
  x: TensorInfo,
  filter: TensorInfo,
  dilations: [number, number],
  pad: ExplicitPad,
): TensorInfo {
  if (dilations[0] === 1 && dilations[1] === 1) {
    const y = runSimdConv(backend, x, filter, null, 1, pad, 'linear');
    if (y !== null) return y;
  }
  const attrs: NamedAttrMap = { strides: 1, pad, dataFormat: 'NHWC', dilations };
  return runWasmKernel(backend, Conv2D, { x, filter }, attrs);
}

/**
 * dW[a,b,ci,co] = Σ_{n,i,j} x[n, i·s + a − pt, j·s + b − pl, ci] · dy[n,i,j,co]: a convolution of x seen as
 * [C_in, H, W, N] (batch = C_in, channels = N) with dy seen as an [Ho, Wo, N, C_out] filter, dilated by the
 * forward stride; its [C_in, ≥kh, ≥kw, C_out] output is cropped and transposed back to [kh, kw, C_in, C_out].
 */
const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const convAttrs = attrs as unknown as Conv2DBackpropFilterAttrs;
  const info = convInfoFor(Conv2DBackpropFilter, x.shape as Shape4, convAttrs.filterShape, convAttrs);
  const { filterHeight: kh, filterWidth: kw, inHeight, inWidth, outHeight, outWidth } = info;
  const { strideHeight: sh, strideWidth: sw, padInfo } = info;
  const simd = SimdKernels.of(wasm);
  if (simd !== null) {
    // The engine's SIMD kernel reads x and dy in place (a channel-padded copy of dy when C_out is not a multiple
    // of 4): no transposes, no packing of dy as a filter.
    const dW = wasm.makeOutput([kh, kw, info.inChannels, info.outChannels], 'float32');
    simd.conv2dFilterGrad(x, dy, dW, [sh, sw], padInfo.top, padInfo.left);
    return dW;
  }
  const bottom = Math.max(0, kh - 1 + (outHeight - 1) * sh + 1 - inHeight - padInfo.top);
  const right = Math.max(0, kw - 1 + (outWidth - 1) * sw + 1 - inWidth - padInfo.left);

  const xT = runWasmKernel(wasm, 'Transpose', { x }, { perm: [3, 1, 2, 0] });
  const dyT = runWasmKernel(wasm, 'Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  let grad = conv2d(wasm, xT, dyT, [sh, sw], explicitPad(padInfo.top, bottom, padInfo.left, right));
  release(wasm, xT, dyT);
  const [inChannels, gradHeight, gradWidth, outChannels] = grad.shape as Shape4;
  if (gradHeight !== kh || gradWidth !== kw) {
    const size = [inChannels, kh, kw, outChannels];
    const cropped = runWasmKernel(wasm, 'Slice', { x: grad }, { begin: [0, 0, 0, 0], size });
    release(wasm, grad);
    grad = cropped;
  }
  const dW = runWasmKernel(wasm, 'Transpose', { x: grad }, { perm: [1, 2, 0, 3] });
  release(wasm, grad);
  return dW;
};

/** The taps of one filter axis that reach output positions ≡ `phase` (mod `stride`), and where they read dy. */
interface PhaseTaps {
  /** First tap; the others follow every `stride`. */
  first: number;
  count: number;
  /** Output positions of this phase. */
  outputs: number;
  /** Rows (or columns) of dy to drop before and after, and of zeros to add before and after. */
  cropBefore: number;
  cropAfter: number;
  padBefore: number;
  padAfter: number;
}

function phaseTaps(
  phase: number,
  stride: number,
  kernel: number,
  pad: number,
  size: number,
  dySize: number,
): PhaseTaps {
  const first = (phase + pad) % stride;
  const count = kernel > first ? Math.ceil((kernel - first) / stride) : 0;
  const outputs = size > phase ? Math.ceil((size - phase) / stride) : 0;
  // Output m of this phase reads dy[m + offset − count + 1 + t] for t < count (the flipped sub-filter).
  const offset = (phase + pad - first) / stride;
  const before = count - 1 - offset;
  const after = outputs + count - 1 - dySize - before;
  return {
    first,
    count,
    outputs,
    cropBefore: Math.max(0, -before),
    cropAfter: Math.max(0, -after),
    padBefore: Math.max(0, before),
    padAfter: Math.max(0, after),
  };
}

/** The taps of one phase, spatially flipped, with in/out channels swapped: → [th, tw, C_out, C_in]. */
function phaseFilter(
  backend: WasmBackend,
  filter: TensorInfo,
  rows: PhaseTaps,
  cols: PhaseTaps,
  strides: [number, number],
): TensorInfo {
  const [, kw, ci, co] = filter.shape as Shape4;
  const out = backend.makeOutput([rows.count, cols.count, co, ci], 'float32');
  const src = backend.typedArrayFromHeap(filter);
  const dst = backend.typedArrayFromHeap(out);
  for (let t = 0; t < rows.count; t++) {
    const a = rows.first + (rows.count - 1 - t) * strides[0];
    for (let u = 0; u < cols.count; u++) {
      const b = cols.first + (cols.count - 1 - u) * strides[1];
      const srcBase = (a * kw + b) * ci * co;
      const dstBase = (t * cols.count + u) * co * ci;
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) dst[dstBase + o * ci + i] = src[srcBase + i * co + o] as number;
      }
    }
  }
  return out;
}

/** The row and column phases of an input gradient (one each at stride 1). */
function outputPhases(info: backend_util.Conv2DInfo): { rows: PhaseTaps[]; cols: PhaseTaps[] } {
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } =
    info;
  return {
    rows: Array.from({ length: strideHeight }, (_, r) =>
      phaseTaps(r, strideHeight, filterHeight, info.padInfo.top, inHeight, outHeight),
    ),
    cols: Array.from({ length: strideWidth }, (_, q) =>
      phaseTaps(q, strideWidth, filterWidth, info.padInfo.left, inWidth, outWidth),
    ),
  };
}

/** A phase without taps, outputs or dy left contributes nothing: its positions of dX stay zero. */
const contributes = (taps: PhaseTaps, dySize: number): boolean =>
  taps.count > 0 && taps.outputs > 0 && dySize - taps.cropBefore - taps.cropAfter > 0;

/** dX of shape `info`, zeroed unless every phase contributes (and so writes every position). */
function phaseOutput(
  backend: WasmBackend,
  info: backend_util.Conv2DInfo,
  phases: { rows: PhaseTaps[]; cols: PhaseTaps[] },
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const dx = backend.makeOutput([batchSize, inHeight, inWidth, inChannels], 'float32');
  const complete =
    phases.rows.every((t) => contributes(t, outHeight)) && phases.cols.every((t) => contributes(t, outWidth));
  if (!complete) backend.typedArrayFromHeap(dx).fill(0);
  return dx;
}

/**
 * dX one output phase at a time on the engine's SIMD kernel: each phase a stride-1 convolution of dy, padded once
 * for all of them, written straight into its rows and columns of dX.
 */
function simdPhaseBackpropInput(
  backend: WasmBackend,
  simd: SimdKernels,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const plan = outputPhases(info);
  const dx = phaseOutput(backend, info, plan);
  const pad = {
    top: Math.max(...plan.rows.map((t) => t.padBefore)),
    bottom: Math.max(...plan.rows.map((t) => t.padAfter)),
    left: Math.max(...plan.cols.map((t) => t.padBefore)),
    right: Math.max(...plan.cols.map((t) => t.padAfter)),
  };
  const strides: [number, number] = [info.strideHeight, info.strideWidth];
  const phases: InputGradPhase[] = [];
  for (const [r, rows] of plan.rows.entries()) {
    if (!contributes(rows, info.outHeight)) continue;
    for (const [q, cols] of plan.cols.entries()) {
      if (!contributes(cols, info.outWidth)) continue;
      phases.push({
        taps: phaseFilter(backend, filter, rows, cols, strides),
        firstRow: pad.top - rows.padBefore + rows.cropBefore,
        firstColumn: pad.left - cols.padBefore + cols.cropBefore,
        rows: rows.outputs,
        columns: cols.outputs,
        dxRow: r,
        dxColumn: q,
      });
    }
  }
  try {
    simd.conv2dInputGradPhases(dy, dx, phases, strides, pad);
  } finally {
    release(backend, ...phases.map((p) => p.taps));
  }
  return dx;
}

/**
 * Strided dX one output phase at a time: the inputs at rows ≡ r (mod s) and columns ≡ q (mod s) only meet
 * the filter taps ≡ r + pad (mod s), so each phase is a stride-1 convolution of dy with those taps, written
 * into every s-th position of dX. This does 1/s² of the work of convolving a zero-upsampled dy. Without the
 * SIMD module: each phase on XNNPACK, copied into dX from JavaScript.
 */
function stridedBackpropInput(
  backend: WasmBackend,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const strides: [number, number] = [info.strideHeight, info.strideWidth];
  const plan = outputPhases(info);
  const dx = phaseOutput(backend, info, plan);
  for (const [r, rows] of plan.rows.entries()) {
    for (const [q, cols] of plan.cols.entries()) {
      if (!contributes(rows, outHeight) || !contributes(cols, outWidth)) continue;
      const dyRows = outHeight - rows.cropBefore - rows.cropAfter;
      const dyCols = outWidth - cols.cropBefore - cols.cropAfter;
      const cropped =
        dyRows === outHeight && dyCols === outWidth
          ? dy
          : runWasmKernel(
              backend,
              'Slice',
              { x: dy },
              {
                begin: [0, rows.cropBefore, cols.cropBefore, 0],
                size: [batchSize, dyRows, dyCols, info.outChannels],
              },
            );
      const taps = phaseFilter(backend, filter, rows, cols, strides);
      const pad = explicitPad(rows.padBefore, rows.padAfter, cols.padBefore, cols.padAfter);
      const phase = conv2d(backend, cropped, taps, [1, 1], pad);
      if (cropped !== dy) release(backend, cropped);
      release(backend, taps);
      const src = backend.typedArrayFromHeap(phase);
      const dst = backend.typedArrayFromHeap(dx);
      for (let n = 0; n < batchSize; n++) {
        for (let m = 0; m < rows.outputs; m++) {
          const y = r + m * strides[0];
          for (let k = 0; k < cols.outputs; k++) {
            const from = ((n * rows.outputs + m) * cols.outputs + k) * inChannels;
            const to = ((n * inHeight + y) * inWidth + q + k * strides[1]) * inChannels;
            dst.set(src.subarray(from, from + inChannels), to);
          }
        }
      }
      release(backend, phase);
    }
  }
  return dx;
}

/**
 * dX = dy ⋆ flip(W)ᵀ: a stride-1 convolution of the padded output gradient with the spatially flipped filter
 * whose in/out channels are swapped; strided ones (and stride-1 ones whose padding drops rows of dy) go phase by
 * phase ({@link simdPhaseBackpropInput}, {@link stridedBackpropInput} without the SIMD module).
 */
const conv2DBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const convAttrs = attrs as unknown as Conv2DBackpropInputAttrs;
  const info = convInfoFor(Conv2DBackpropInput, convAttrs.inputShape, filter.shape as Shape4, convAttrs);
  const { filterHeight: kh, filterWidth: kw, inHeight, inWidth, outHeight, outWidth, padInfo } = info;
  const rows = phaseTaps(0, 1, kh, padInfo.top, inHeight, outHeight);
  const cols = phaseTaps(0, 1, kw, padInfo.left, inWidth, outWidth);
  const strided = info.strideHeight !== 1 || info.strideWidth !== 1;
  if (strided || rows.cropBefore + rows.cropAfter + cols.cropBefore + cols.cropAfter > 0) {
    // Phase by phase; on the SIMD kernel, straight into dX (no per-phase outputs copied from JavaScript).
    const simd = info.inChannels % 4 === 0 && dy.dtype === 'float32' ? SimdKernels.of(wasm) : null;
    return simd === null
      ? stridedBackpropInput(wasm, dy, filter, info)
      : simdPhaseBackpropInput(wasm, simd, dy, filter, info);
  }
  const flipped = phaseFilter(wasm, filter, rows, cols, [1, 1]);
  const dx = conv2d(
    wasm,
    dy,
    flipped,
    [1, 1],
    explicitPad(rows.padBefore, rows.padAfter, cols.padBefore, cols.padAfter),
  );
  release(wasm, flipped);
  return dx;
};

/** `Conv2DBackpropFilter` for the wasm backend (which has none), built on its XNNPACK `Conv2D`. */
export const wasmConv2DBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter,
};

/** `Conv2DBackpropInput` for the wasm backend, replacing its scalar loop with XNNPACK `Conv2D`. */
export const wasmConv2DBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput,
};
