export {
  BACKENDS,
  type BackendName,
  describeEngine,
  type EngineInfo,
  type InitEngineOptions,
  initEngine,
  type SkippedBackend,
} from './backends.js';
export { BackendUnavailableError, UnknownBackendError } from './errors.js';
export { addEngineKernel, engineKernelNames } from './kernels.js';
