import {
  _FusedMatMul,
  type _FusedMatMulAttrs,
  BatchMatMul,
  type BatchMatMulAttrs,
  backend_util,
  Conv2D,
  type Conv2DAttrs,
  FusedConv2D,
  type FusedConv2DAttrs,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { type SimdActivation, SimdKernels } from './simd.js';
import { runWasmKernel, type WasmBackend } from './wasm-backend.js';

// Forward kernels on the engine's SIMD module. The convolution beats tfjs-backend-wasm's XNNPACK one for every
// CIFAR ResNet shape up to 64 input channels (1.1–3× per call, most on few output channels: the m basis filters of
// a basis convolution, the rank-r factor of an SVD, the 3-channel stem); the matrix products are the 1×1
// combination step of a basis convolution and its weight gradient. 3×3 stride-1 convolutions from 8 channels up
// run as Winograd's F(2×2, 3×3) (2.25× fewer multiplies). Other shapes stay on the backend's kernels.

/** Widest input the SIMD convolution takes: at 128 input channels XNNPACK is faster (bench/src/layers.ts shapes). */
const SIMD_CONV_MAX_IN_CHANNELS = 64;
/** Output channels up to which few outputs from many inputs run faster as vectors of input channels. */
const LANES_MAX_OUT_CHANNELS = 8;
/** The right factor of a matrix product the small-right kernel keeps in cache: at most 16 KiB. */
const SMALL_RIGHT_FLOATS = 4096;

function simdActivation(activation: string | undefined): SimdActivation | null {
  if (activation === undefined || activation === 'linear') return 'linear';
  return activation === 'relu' ? 'relu' : null;
}

/** A bias the kernels can add: one value per output channel (or none). */
function channelBias(bias: TensorInfo | undefined, channels: number): TensorInfo | null | undefined {
  if (bias === undefined) return null;
  return bias.shape.reduce((a, b) => a * b, 1) === channels ? bias : undefined;
}

/**
 * Whether a convolution runs as Winograd's F(2×2, 3×3): 3×3, stride 1, input channels in whole vectors, at least
 * 8 (fewer leave the products too short to pay for the transforms), unless the direct kernel's lanes take it with
 * 4 outputs (a basis convolution's m = C_out/4 at 16 channels): there Winograd's products broadcast one input per
 * multiply-add, and the lanes were 1.4–2× as fast (16→4 at 32×32: 1.05 against 1.5–2.2 ms); from 8 outputs
 * Winograd is the faster (16→8: 1.7 against the lanes' 1.9 ms), and fewer than 4 run it padded to one vector.
 */
function winogradApplies(
  info: backend_util.Conv2DInfo,
  inChannels: number,
  lanes: boolean,
  outChannels: number,
): boolean {
  return (
    info.filterHeight === 3 &&
    info.filterWidth === 3 &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    inChannels % 4 === 0 &&
    inChannels >= 8 &&
    !(lanes && outChannels === 4)
  );
}

/**
 * act(conv(x, filter) + bias) on the SIMD convolution, or null where it does not apply (C_in over
 * {@link SIMD_CONV_MAX_IN_CHANNELS}, no SIMD): dilation 1, NHWC, `pad` as tfjs convolutions take it.
 */
export function runSimdConv(
  backend: WasmBackend,
  x: TensorInfo,
  filter: TensorInfo,
  bias: TensorInfo | null,
  strides: number | [number, number],
  pad: Conv2DAttrs['pad'],
  activation: SimdActivation,
  dimRoundingMode?: Conv2DAttrs['dimRoundingMode'],
): TensorInfo | null {
  const [kh, , inChannels, outChannels] = filter.shape as [number, number, number, number];
  const simd =
    inChannels <= SIMD_CONV_MAX_IN_CHANNELS && kh <= 16 && x.dtype === 'float32'
      ? SimdKernels.of(backend)
      : null;
  if (simd === null) return null;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const y = backend.makeOutput([info.batchSize, info.outHeight, info.outWidth, outChannels], 'float32');
  const lanes =
    inChannels % 4 === 0 &&
    inChannels >= 16 &&
    outChannels % 4 === 0 &&
    outChannels <= LANES_MAX_OUT_CHANNELS;
  if (winogradApplies(info, inChannels, lanes, outChannels)) {
    simd.conv2dWinograd(x, filter, bias, y, info.padInfo.top, info.padInfo.left, activation);
    return y;
  }
  simd.conv2d(
    x,
    filter,
    bias,
    y,
    [info.strideHeight, info.strideWidth],
    info.padInfo.top,
    info.padInfo.left,
    activation,
    lanes,
  );
  return y;
}

function conv2dKernel(kernelName: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    const { x, filter, bias, preluActivationWeights } = inputs as NamedTensorInfoMap & {
      x: TensorInfo;
      filter: TensorInfo;
    };
    const convAttrs = attrs as unknown as FusedConv2DAttrs & Conv2DAttrs;
    const activation = simdActivation(convAttrs.activation);
    const biasInfo = channelBias(bias, filter.shape[3] as number);
    const y =
      convAttrs.dataFormat !== 'NCHW' &&
      (convAttrs.dilations === undefined || backend_util.tupleValuesAreOne(convAttrs.dilations)) &&
      activation !== null &&
      preluActivationWeights === undefined &&
      biasInfo !== undefined
        ? runSimdConv(
            wasm,
            x,
            filter,
            biasInfo,
            convAttrs.strides,
            convAttrs.pad,
            activation,
            convAttrs.dimRoundingMode,
          )
        : null;
    return y ?? runWasmKernel(wasm, kernelName, inputs, attrs as unknown as NamedAttrMap);
  };
}

function rank3(info: TensorInfo): [number, number, number] {
  const shape = info.shape;
  return [shape.length > 2 ? shape.slice(0, -2).reduce((a, b) => a * b, 1) : 1, ...shape.slice(-2)] as [
    number,
    number,
    number,
  ];
}

function matMul(kernelName: string): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as WasmBackend;
    const { a, b, bias, preluActivationWeights } = inputs as NamedTensorInfoMap & {
      a: TensorInfo;
      b: TensorInfo;
    };
    const { transposeA, transposeB, activation } = attrs as unknown as _FusedMatMulAttrs & BatchMatMulAttrs;
    const [batchA, rowsA, colsA] = rank3(a);
    const [batchB, rowsB, colsB] = rank3(b);
    const act = simdActivation(activation);
    // Leading (batch) dimensions of the output, all 1 here: the kernel keeps the operands' rank.
    const outer = (a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2);
    const simd =
      batchA === 1 &&
      batchB === 1 &&
      !transposeB &&
      colsB % 4 === 0 &&
      act !== null &&
      preluActivationWeights === undefined &&
      a.dtype === 'float32' &&
      b.dtype === 'float32'
        ? SimdKernels.of(wasm)
        : null;
    if (simd !== null && !transposeA && rowsB * colsB <= SMALL_RIGHT_FLOATS) {
      const biasInfo = channelBias(bias, colsB);
      if (biasInfo !== undefined) {
        const out = wasm.makeOutput([...outer, rowsA, colsB], 'float32');
        simd.matMulSmallRight(a, b, biasInfo, out, act ?? 'linear');
        return out;
      }
    }
    if (simd !== null && transposeA && bias === undefined && act === 'linear') {
      // aᵀ·b with a tall a: the weight gradient of the combination step, without materialising aᵀ.
      const out = wasm.makeOutput([...outer, colsA, colsB], 'float32');
      simd.matMulTransposedLeft(a, b, out);
      return out;
    }
    return runWasmKernel(wasm, kernelName, inputs, attrs as unknown as NamedAttrMap);
  };
}

/** `Conv2D` on the SIMD convolution where it applies, other shapes on XNNPACK. */
export const wasmConv2DConfig: KernelConfig = {
  kernelName: Conv2D,
  backendName: 'wasm',
  kernelFunc: conv2dKernel(Conv2D),
};

/** `FusedConv2D` (bias, relu) on the SIMD convolution where it applies, other cases on XNNPACK. */
export const wasmFusedConv2DConfig: KernelConfig = {
  kernelName: FusedConv2D,
  backendName: 'wasm',
  kernelFunc: conv2dKernel(FusedConv2D),
};

/** `BatchMatMul` with SIMD kernels for a small right factor and for aᵀ·b, other shapes on XNNPACK. */
export const wasmBatchMatMulConfig: KernelConfig = {
  kernelName: BatchMatMul,
  backendName: 'wasm',
  kernelFunc: matMul(BatchMatMul),
};

/** `_FusedMatMul` (bias, relu) with the small-right-factor SIMD kernel, other cases on XNNPACK. */
export const wasmFusedMatMulConfig: KernelConfig = {
  kernelName: _FusedMatMul,
  backendName: 'wasm',
  kernelFunc: matMul(_FusedMatMul),
};
