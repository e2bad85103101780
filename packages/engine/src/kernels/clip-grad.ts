import {
  ClipByValue,
  type ClipByValueAttrs,
  cast,
  engine,
  type GradConfig,
  getBackend,
  getKernel,
  greaterEqual,
  type KernelConfig,
  type KernelFunc,
  lessEqual,
  logicalAnd,
  mul,
  type NamedAttrMap,
  Relu,
  Relu6,
  step,
  type Tensor,
  type TensorInfo,
  where,
  zerosLike,
} from '@tensorflow/tfjs-core';
import { SimdKernels } from './simd.js';
import type { WasmBackend } from './wasm-backend.js';

/**
 * Engine kernel (wasm only): dy where x lies in the interval [low, high] (low excluded when `lowOpen`), else 0, in
 * one SIMD pass (a JavaScript loop without wasm SIMD). It is the gradient of `ClipByValue` (what tfjs-layers'
 * `ReLU({ maxValue })` runs, MobileNetV2's ReLU6), of `Relu6` and of `Relu` (high = ∞). tfjs-core computes it as where(logicalAnd(x ≥ low, x ≤ high), dy, zeros): four passes,
 * three of them on the wasm backend's slow broadcasting comparison of a tensor with a scalar (half of a
 * MobileNetV2 train step, more than all its convolutions).
 */
export const MASKED_GRAD = 'DecomposeMaskedGrad';

/** The interval of {@link MASKED_GRAD}: [low, high], or (low, high] when `lowOpen`. */
export interface MaskedGradAttrs {
  low: number;
  high: number;
  lowOpen: boolean;
}

/** The JavaScript loop of {@link MASKED_GRAD} (without wasm SIMD; exported for its test): o = g where x is inside. */
export function maskedGradJs(
  g: Float32Array,
  v: Float32Array,
  o: Float32Array,
  attrs: MaskedGradAttrs,
): void {
  const { low, high, lowOpen } = attrs;
  if (lowOpen) {
    for (let i = 0; i < o.length; i++) {
      const value = v[i] as number;
      o[i] = value > low && value <= high ? (g[i] as number) : 0;
    }
  } else {
    for (let i = 0; i < o.length; i++) {
      const value = v[i] as number;
      o[i] = value >= low && value <= high ? (g[i] as number) : 0;
    }
  }
}

const maskedGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const { low, high, lowOpen } = attrs as unknown as MaskedGradAttrs;
  const out = wasm.makeOutput(x.shape, 'float32');
  const simd = SimdKernels.of(wasm);
  if (simd !== null) {
    simd.maskedGrad(dy, x, out, low, high, lowOpen);
    return out;
  }
  maskedGradJs(
    wasm.typedArrayFromHeap(dy) as Float32Array,
    wasm.typedArrayFromHeap(x) as Float32Array,
    wasm.typedArrayFromHeap(out) as Float32Array,
    { low, high, lowOpen },
  );
  return out;
};

/** {@link MASKED_GRAD} for the wasm backend. */
export const wasmMaskedGradConfig: KernelConfig = {
  kernelName: MASKED_GRAD,
  backendName: 'wasm',
  kernelFunc: maskedGrad,
};

/** The engine kernel where the backend has it and the tensors are float32 of one shape, else null. */
function maskedGradKernel(dy: Tensor, x: Tensor, attrs: MaskedGradAttrs): Tensor | null {
  const fits =
    getKernel(MASKED_GRAD, getBackend()) !== undefined &&
    dy.dtype === 'float32' &&
    x.dtype === 'float32' &&
    dy.size === x.size;
  return fits
    ? (engine().runKernel(MASKED_GRAD, { dy, x }, attrs as unknown as NamedAttrMap) as Tensor)
    : null;
}

const single = (dy: Tensor | Tensor[]): Tensor => (Array.isArray(dy) ? (dy[0] as Tensor) : dy);

/** Gradient of `ClipByValue`, tfjs-core's own on backends without {@link MASKED_GRAD}. */
export const clipByValueGradConfig: GradConfig = {
  kernelName: ClipByValue,
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const g = single(dy);
    const [x] = saved as [Tensor];
    const { clipValueMin: low, clipValueMax: high } = attrs as unknown as ClipByValueAttrs;
    return {
      x: () =>
        maskedGradKernel(g, x, { low, high, lowOpen: false }) ??
        where(logicalAnd(greaterEqual(x, low), lessEqual(x, high)), g, zerosLike(g)),
    };
  },
};

/**
 * dy where x > 0 (a relu's gradient for its input x, or for its output: both are positive at the same places), in
 * one pass where the backend has {@link MASKED_GRAD}, else tfjs-core's dy·step(x).
 */
export function reluGradient(dy: Tensor, x: Tensor): Tensor {
  return (
    maskedGradKernel(dy, x, { low: 0, high: Number.POSITIVE_INFINITY, lowOpen: true }) ??
    mul(dy, cast(step(x), 'float32'))
  );
}

/** Gradient of `Relu` ({@link reluGradient}). */
export const reluGradConfig: GradConfig = {
  kernelName: Relu,
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
    const [x] = saved as [Tensor];
    return { x: () => reluGradient(single(dy), x) };
  },
};

/** Gradient of `Relu6` (dy where 0 < x ≤ 6), tfjs-core's own on backends without {@link MASKED_GRAD}. */
export const relu6GradConfig: GradConfig = {
  kernelName: Relu6,
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
    const g = single(dy);
    const [x] = saved as [Tensor];
    return {
      x: () =>
        maskedGradKernel(g, x, { low: 0, high: 6, lowOpen: true }) ??
        mul(g, cast(mul(lessEqual(x, 6), step(x)), 'float32')),
    };
  },
};
