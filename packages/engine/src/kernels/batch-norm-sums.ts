import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { channelMoments } from './batch-norm-train.js';
import type { WasmBackend } from './wasm-backend.js';

/**
 * Engine kernel (wasm only): per-channel Σ dy and Σ dy·(x − mean) over every axis but the last, in one pass
 * over x and dy. The BatchNorm gradient needs both; as tfjs ops they take four passes and two temporaries.
 * Inputs: `x` and `dy` of the same float32 shape [..., C], `mean` of C values. Outputs: two [C] tensors.
 */
export const BATCH_NORM_GRAD_SUMS = 'DecomposeBatchNormGradSums';

const batchNormGradSums: KernelFunc = ({ inputs, backend }) => {
  const wasm = backend as WasmBackend;
  const { x, dy, mean } = inputs as { x: TensorInfo; dy: TensorInfo; mean: TensorInfo };
  const channels = x.shape[x.shape.length - 1] ?? 0;
  const sumDy = wasm.makeOutput([channels], 'float32');
  const sumDyCentered = wasm.makeOutput([channels], 'float32');
  const means = Float64Array.from(wasm.typedArrayFromHeap(mean));
  const { sum: totals, products } = channelMoments(wasm, x, dy, channels);
  // Σ dy·(x − mean) = Σ dy·x − mean·Σ dy, in float64.
  const centeredTotals = products.map((total, c) => total - (means[c] as number) * (totals[c] as number));
  wasm.typedArrayFromHeap(sumDy).set(totals);
  wasm.typedArrayFromHeap(sumDyCentered).set(centeredTotals);
  return [sumDy, sumDyCentered];
};

/** {@link BATCH_NORM_GRAD_SUMS} for the wasm backend. */
export const wasmBatchNormGradSumsConfig: KernelConfig = {
  kernelName: BATCH_NORM_GRAD_SUMS,
  backendName: 'wasm',
  kernelFunc: batchNormGradSums,
};
