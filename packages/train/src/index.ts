export {
  CHECKPOINT_FORMAT,
  type CheckpointInfo,
  loadCheckpointWeights,
  readCheckpoint,
} from './checkpoint.js';
export { type ModelSignature, modelSignature, type TrainConfig } from './config.js';
export {
  CheckpointExistsError,
  CheckpointMismatchError,
  CheckpointWriteError,
  GradientMismatchError,
  InvalidCheckpointError,
  InvalidTrainingOptionError,
  ModelDataMismatchError,
  RunLockedError,
  TrainError,
  TrainingDivergedError,
  TrainingInterruptedError,
} from './errors.js';
export { type EvaluateOptions, type EvaluationResult, evaluate, modelGeometry } from './evaluate.js';
export { augmentedImages } from './images.js';
export { LOCK_FILE, type LockOwner, lockRunDirectory, type RunLock } from './lock.js';
export {
  createSchedule,
  type LrSchedule,
  type ScheduleLength,
  type ScheduleSpec,
} from './schedule.js';
export {
  type ResolvedSgdOptions,
  SgdOptimizer,
  type SgdOptions,
  type SgdState,
  type WeightDecayScope,
} from './sgd.js';
export {
  type EpochMetrics,
  METRICS_FILE,
  readMetrics,
  type StepProgress,
  type TrainOptions,
  type TrainResult,
  train,
} from './train.js';
