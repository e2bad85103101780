import { getKernel, type KernelConfig, registerKernel, unregisterKernel } from '@tensorflow/tfjs-core';

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

/** Registers the engine's kernels for `backendName` with tfjs, replacing the backend's own where both exist. */
export function installEngineKernels(backendName: string): string[] {
  for (const config of engineKernels.get(backendName)?.values() ?? []) {
    if (getKernel(config.kernelName, backendName) !== undefined) {
      unregisterKernel(config.kernelName, backendName);
    }
    registerKernel(config);
  }
  return engineKernelNames(backendName);
}
