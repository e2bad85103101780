export {
  BACKENDS,
  type BackendName,
  type EngineInfo,
  type InitEngineOptions,
  initEngine,
  type SkippedBackend,
} from './backends.js';
export {
  accelerateBatchNormTraining,
  type BatchNormTrainingResult,
  batchNormTraining,
} from './batch-norm-training.js';
export { BackendUnavailableError, EngineError, UnknownBackendError } from './errors.js';
export {
  checkTrainable,
  createGradientComputer,
  type GradientComputer,
  GradientComputerClosedError,
  type GradientComputerOptions,
  GradientOptionsError,
  type GradientResult,
  GradientWorkerError,
  InvalidBatchError,
  type ModelOutputKind,
  softmaxCrossEntropy,
  type TrainingBatch,
  UntrainableLayerError,
  type WorkerFailurePhase,
} from './gradients/index.js';
export { skipInputGradients } from './input-convolutions.js';
export {
  createDirectory,
  describeFileSystemFailure,
  FILE_SCHEME,
  type FileSystemFailure,
  type FileSystemOptions,
  type FileSystemProblem,
  fileSystem,
  fileSystemFailure,
  MODEL_JSON_FILE,
  ModelFileError,
  type ModelFileProblem,
  registerFileRouter,
  temporaryPath,
  WEIGHTS_FILE,
  withSeparableDepthMultipliers,
} from './io/index.js';
export { UnsupportedKernelInputError } from './kernels/index.js';
export { addEngineKernel, engineKernelNames } from './kernels.js';
export { type WorkerEntry, workerEntry } from './threads.js';
