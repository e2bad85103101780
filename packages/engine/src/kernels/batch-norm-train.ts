import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { type ChannelMoments, SimdKernels } from './simd.js';
import type { WasmBackend } from './wasm-backend.js';

// BatchNorm training as two kernels instead of the ~25 ops tfjs-layers composes (moments, normalisation and
// their gradients): five passes over the activations per training step instead of about twenty.

/**
 * Engine kernel: per-channel batch mean and (biased) variance of `x`, and `y = (x − mean)·γ/√(var+ε) + β`
 * (relu'd in the same pass with the `relu` attribute).
 */
export const BATCH_NORM_TRAIN = 'DecomposeBatchNormTrain';
/** Engine kernel: dx, dγ and dβ of {@link BATCH_NORM_TRAIN}, the batch statistics' own dependence on x included. */
export const BATCH_NORM_TRAIN_GRAD = 'DecomposeBatchNormTrainGrad';

/** Attributes of both kernels. */
export interface BatchNormTrainAttrs {
  varianceEpsilon: number;
  /** {@link BATCH_NORM_TRAIN} only: write max(0, y). */
  relu?: boolean;
}

/**
 * Per channel of a [..., C] array, in float64: Σ x and Σ x² when `weights` is null, else Σ w and Σ w·x. One
 * pass; four channels at a time in local variables when C is a multiple of 4 (2× faster in V8 than
 * accumulating into arrays). Float64 sums of float32 values keep Σ x² − n·mean² exact enough for variances.
 */
function channelMomentsJs(
  xs: ArrayLike<number>,
  weights: ArrayLike<number> | null,
  channels: number,
): ChannelMoments {
  const sum = new Float64Array(channels);
  const products = new Float64Array(channels);
  const n = xs.length;
  const w = weights ?? xs;
  if (channels % 4 === 0) {
    for (let c = 0; c < channels; c += 4) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let p0 = 0;
      let p1 = 0;
      let p2 = 0;
      let p3 = 0;
      for (let o = c; o < n; o += channels) {
        const w0 = w[o] as number;
        const w1 = w[o + 1] as number;
        const w2 = w[o + 2] as number;
        const w3 = w[o + 3] as number;
        s0 += w0;
        s1 += w1;
        s2 += w2;
        s3 += w3;
        p0 += w0 * (xs[o] as number);
        p1 += w1 * (xs[o + 1] as number);
        p2 += w2 * (xs[o + 2] as number);
        p3 += w3 * (xs[o + 3] as number);
      }
      sum.set([s0, s1, s2, s3], c);
      products.set([p0, p1, p2, p3], c);
    }
    return { sum, products };
  }
  let c = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i] as number;
    sum[c] = (sum[c] as number) + wi;
    products[c] = (products[c] as number) + wi * (xs[i] as number);
    if (++c === channels) c = 0;
  }
  return { sum, products };
}

/**
 * `out[i] = a[i]·p[c] + b[i]·q[c] + r[c]` (b may be null: then `a[i]·p[c] + r[c]`, relu'd with `relu`), with c
 * the channel of i.
 */
function channelAffineJs(
  out: Float32Array,
  a: ArrayLike<number>,
  p: Float32Array,
  b: ArrayLike<number> | null,
  q: Float32Array,
  r: Float32Array,
  relu: boolean,
): void {
  const channels = p.length;
  const n = out.length;
  let c = 0;
  if (b === null) {
    for (let i = 0; i < n; i++) {
      const y = (a[i] as number) * (p[c] as number) + (r[c] as number);
      out[i] = relu && y < 0 ? 0 : y;
      if (++c === channels) c = 0;
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    out[i] = (a[i] as number) * (p[c] as number) + (b[i] as number) * (q[c] as number) + (r[c] as number);
    if (++c === channels) c = 0;
  }
}

/**
 * Per-channel Σ w and Σ w·x (w = x when `weights` is null) of float32 tensors on the wasm heap: the SIMD kernel
 * where it runs (C a multiple of 4), JavaScript otherwise.
 */
export function channelMoments(
  backend: WasmBackend,
  x: TensorInfo,
  weights: TensorInfo | null,
  channels: number,
): ChannelMoments {
  const simd = channels % 4 === 0 ? SimdKernels.of(backend) : null;
  if (simd !== null) return simd.channelMoments(x, weights, channels);
  const values = backend.typedArrayFromHeap(x);
  return channelMomentsJs(values, weights === null ? null : backend.typedArrayFromHeap(weights), channels);
}

/**
 * `out = a·p + b·q + r` per channel (b optional; without it relu'd with `relu`), by the SIMD kernel where it
 * runs, JavaScript otherwise.
 */
function channelAffine(
  backend: WasmBackend,
  out: TensorInfo,
  a: TensorInfo,
  p: Float32Array,
  b: TensorInfo | null,
  q: Float32Array,
  r: Float32Array,
  relu = false,
): void {
  const simd = p.length % 4 === 0 ? SimdKernels.of(backend) : null;
  if (simd !== null) {
    simd.channelAffine(out, a, p, b, q, r, relu);
    return;
  }
  const bValues = b === null ? null : backend.typedArrayFromHeap(b);
  channelAffineJs(
    backend.typedArrayFromHeap(out) as Float32Array,
    backend.typedArrayFromHeap(a),
    p,
    bValues,
    q,
    r,
    relu,
  );
}

const batchNormTrain: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { x, scale, offset } = inputs as { x: TensorInfo; scale: TensorInfo; offset: TensorInfo };
  const { varianceEpsilon, relu } = attrs as unknown as BatchNormTrainAttrs;
  const channels = x.shape[x.shape.length - 1] ?? 0;
  const count = x.shape.reduce((a, b) => a * b, 1) / channels;
  const moments = channelMoments(wasm, x, null, channels);
  const mean = moments.sum.map((total) => total / count);
  const variance = moments.products.map((total, c) => Math.max(0, total / count - (mean[c] as number) ** 2));
  const gammas = wasm.typedArrayFromHeap(scale);
  const betas = wasm.typedArrayFromHeap(offset);
  const gain = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const g = (gammas[c] as number) / Math.sqrt((variance[c] as number) + varianceEpsilon);
    gain[c] = g;
    shift[c] = (betas[c] as number) - (mean[c] as number) * g;
  }
  const y = wasm.makeOutput([...x.shape], 'float32');
  channelAffine(wasm, y, x, gain, null, gain, shift, relu === true);
  const meanOut = wasm.makeOutput([channels], 'float32');
  const varianceOut = wasm.makeOutput([channels], 'float32');
  wasm.typedArrayFromHeap(meanOut).set(mean);
  wasm.typedArrayFromHeap(varianceOut).set(variance);
  return [y, meanOut, varianceOut];
};

/**
 * With n values per channel, g = γ/√(var+ε), S₁ = Σ dy and S₂ = Σ dy·(x − mean):
 * dx = g·(dy − S₁/n − (x − mean)·S₂/(n·(var+ε))), dγ = S₂/√(var+ε), dβ = S₁.
 */
const batchNormTrainGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { x, dy, mean, variance, scale } = inputs as {
    x: TensorInfo;
    dy: TensorInfo;
    mean: TensorInfo;
    variance: TensorInfo;
    scale: TensorInfo;
  };
  const { varianceEpsilon } = attrs as unknown as BatchNormTrainAttrs;
  const means = Float64Array.from(wasm.typedArrayFromHeap(mean));
  const variances = wasm.typedArrayFromHeap(variance);
  const gammas = wasm.typedArrayFromHeap(scale);
  const channels = means.length;
  const count = x.shape.reduce((a, b) => a * b, 1) / channels;
  const { sum: sumDy, products: sumDyX } = channelMoments(wasm, x, dy, channels);
  // Σ dy·(x − mean) = Σ dy·x − mean·Σ dy, exact enough in float64.
  const sumDyCentered = sumDyX.map((total, c) => total - (means[c] as number) * (sumDy[c] as number));
  const dyFactor = new Float32Array(channels);
  const xFactor = new Float32Array(channels);
  const constant = new Float32Array(channels);
  const dScale = wasm.makeOutput([channels], 'float32');
  const dOffset = wasm.makeOutput([channels], 'float32');
  const dScaleValues = wasm.typedArrayFromHeap(dScale);
  for (let c = 0; c < channels; c++) {
    const inverseVariance = 1 / ((variances[c] as number) + varianceEpsilon);
    const inverseStd = Math.sqrt(inverseVariance);
    const g = (gammas[c] as number) * inverseStd;
    const k = (-g * inverseVariance * (sumDyCentered[c] as number)) / count;
    dyFactor[c] = g;
    xFactor[c] = k;
    constant[c] = (-g * (sumDy[c] as number)) / count - k * (means[c] as number);
    dScaleValues[c] = (sumDyCentered[c] as number) * inverseStd;
  }
  wasm.typedArrayFromHeap(dOffset).set(sumDy);
  const dx = wasm.makeOutput([...x.shape], 'float32');
  channelAffine(wasm, dx, dy, dyFactor, x, xFactor, constant);
  return [dx, dScale, dOffset];
};

/** {@link BATCH_NORM_TRAIN} for the wasm backend. */
export const wasmBatchNormTrainConfig: KernelConfig = {
  kernelName: BATCH_NORM_TRAIN,
  backendName: 'wasm',
  kernelFunc: batchNormTrain,
};

/** {@link BATCH_NORM_TRAIN_GRAD} for the wasm backend. */
export const wasmBatchNormTrainGradConfig: KernelConfig = {
  kernelName: BATCH_NORM_TRAIN_GRAD,
  backendName: 'wasm',
  kernelFunc: batchNormTrainGrad,
};
