export {
  type CalibrationImages,
  calibrationSeenInTraining,
  calibrationSplit,
  DEFAULT_CALIBRATION,
  type HoldOut,
  heldOutImages,
  holdOutSchema,
  holdOutSplit,
  imagesFingerprint,
  type ResolvedCalibration,
  resolveCalibration,
  type TrainingRecord,
} from './calibration.js';
export {
  CalibrationError,
  PackedFormatError,
  PipelineError,
  PluginsFileError,
  StrategyChoiceError,
} from './errors.js';
export { packImageSet, unpackImageSet } from './image-sets.js';
export { loadModel, modelPlugins, PLUGINS_FILE, readModelInputShape, saveModel } from './model-files.js';
export { loadPackedModel, type PackedModel, packModel, unpackModel } from './models.js';
export {
  absoluteSpecifier,
  BUILT_IN_LAYER_MODULES,
  BUILT_IN_STRATEGIES,
  builtInRegistry,
  loadPlugin,
  type ResolvedStrategy,
  resolveStrategy,
} from './strategies.js';
