import {
  getKernel,
  type KernelConfig,
  registerGradient,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
// In Node only tfjs-layers' bundle registers tfjs-core's gradients (tfjs-core's own bundle does not). Loading it
// here, before any initEngine call, also guarantees the engine's gradients are registered after the stock ones.
import '@tensorflow/tfjs-layers';
import { engineGradients, rememberStockKernel, wasmTrainingKernels } from './kernels/index.js';

// The one place where the engine adds kernels on top of a backend: a kernel listed here replaces the
// backend's own (or fills a gap) whenever that backend is activated by initEngine.
const engineKernels = new Map<string, Map<string, KernelConfig>>();

/**
 * Adds a kernel that `initEngine` registers whenever `config.backendName` is activated.
 * Registering the same kernel name twice for a backend replaces the earlier one.
 */
export function addEngineKernel(config: KernelConfig): void {
  let kernels = engineKernels.get(config.backendName);
  if (!kernels) {
    kernels = new Map();
    engineKernels.set(config.backendName, kernels);
  }
  kernels.set(config.kernelName, config);
}

/** Names of the kernels the engine supplies for a backend, sorted. */
export function engineKernelNames(backendName: string): string[] {
  return [...(engineKernels.get(backendName)?.keys() ?? [])].sort();
}

/**
 * Registers the engine's kernels for `backendName` with tfjs, replacing the backend's own where both exist,
 * and the engine's gradients (global in tfjs, and exact on every backend).
 */
export function installEngineKernels(backendName: string): string[] {
  for (const gradient of engineGradients) registerGradient(gradient);
  for (const config of engineKernels.get(backendName)?.values() ?? []) {
    const existing = getKernel(config.kernelName, backendName);
    if (existing !== undefined) {
      rememberStockKernel(existing, config);
      unregisterKernel(config.kernelName, backendName);
    }
    registerKernel(config);
  }
  return engineKernelNames(backendName);
}

for (const kernel of wasmTrainingKernels) addEngineKernel(kernel);
