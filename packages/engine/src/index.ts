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
export {
  FILE_SCHEME,
  fileSystem,
  MODEL_JSON_FILE,
  ModelFileError,
  type ModelFileProblem,
  registerFileRouter,
  WEIGHTS_FILE,
} from './io/index.js';
export { addEngineKernel, engineKernelNames } from './kernels.js';
