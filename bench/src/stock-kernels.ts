import {
  type GradConfig,
  getGradient,
  getKernel,
  type KernelConfig,
  registerGradient,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';

/** What the engine adds besides the conv gradients: restoring the stock ones measures what they bring. */
const NON_CONV_KERNELS = ['Sum', 'Mean', 'Multiply', 'Add', 'Sub', 'Tile', 'Identity', 'Cast', 'Slice'];
/** Engine kernels with no stock counterpart: without them the fused BatchNorm op runs as tfjs ops. */
const ENGINE_ONLY_KERNELS = ['DecomposeBatchNormTrain', 'DecomposeBatchNormTrainGrad'];
const ENGINE_GRADIENTS = ['FusedBatchNorm', 'Mean'];

/** The wasm backend's own kernels and tfjs' own gradients, captured before `initEngine` replaces them. */
export interface StockKernels {
  kernels: KernelConfig[];
  gradients: GradConfig[];
}

/**
 * Captures the stock versions of the engine's non-conv kernels and gradients. Call it before the first
 * `initEngine` (importing the engine registers tfjs' gradients, `initEngine` replaces them).
 */
export async function captureStockKernels(): Promise<StockKernels> {
  await import('@tensorflow/tfjs-backend-wasm');
  return {
    kernels: NON_CONV_KERNELS.map((name) => getKernel(name, 'wasm')).filter(
      (config): config is KernelConfig => config !== undefined,
    ),
    gradients: ENGINE_GRADIENTS.map((name) => getGradient(name)).filter(
      (config): config is GradConfig => config !== undefined,
    ),
  };
}

/**
 * Puts the stock kernels and gradients back and removes the engine's own BatchNorm kernels (until the next
 * `initEngine`), keeping the engine's conv kernels.
 */
export function restoreStockKernels(stock: StockKernels): void {
  for (const config of stock.kernels) {
    unregisterKernel(config.kernelName, config.backendName);
    registerKernel(config);
  }
  for (const config of stock.gradients) registerGradient(config);
  for (const name of ENGINE_ONLY_KERNELS) unregisterKernel(name, 'wasm');
}
