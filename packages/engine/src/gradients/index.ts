export type { ImageBatch, TrainingBatch } from './batch.js';
export { createGradientComputer, type GradientComputer, type GradientComputerOptions } from './computer.js';
export {
  GradientComputerClosedError,
  GradientOptionsError,
  GradientWorkerError,
  InvalidBatchError,
  type WorkerFailurePhase,
} from './errors.js';
export { type ModelOutputKind, softmaxCrossEntropy } from './loss.js';
export type { GradientResult } from './step.js';
export { checkTrainable, UntrainableLayerError } from './trainability.js';
