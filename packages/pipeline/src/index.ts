export { type JsonlScanCache, openScanCache } from './cache.js';
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
export { PIPELINE_CATALOGUE } from './catalogue-url.js';
export {
  CalibrationError,
  PackedFormatError,
  PipelineError,
  PluginsFileError,
  ScanCacheError,
  ScanRequestError,
  ScanUnitsError,
  StrategyChoiceError,
  StrategyMismatchError,
} from './errors.js';
export { packImageSet, unpackImageSet } from './image-sets.js';
export { loadModel, modelPlugins, PLUGINS_FILE, readModelInputShape, saveModel } from './model-files.js';
export { loadPackedModel, type PackedModel, packModel, unpackModel } from './models.js';
export {
  matchLayers,
  type ScanOnExecutorOptions,
  type ScanOnExecutorRequest,
  scanLayers,
  scanOnExecutor,
  weightsFingerprint,
} from './scan.js';
export {
  absoluteSpecifier,
  BUILT_IN_LAYER_MODULES,
  BUILT_IN_STRATEGIES,
  builtInRegistry,
  loadPlugin,
  type ResolvedStrategy,
  resolveStrategy,
} from './strategies.js';
export {
  releaseScanLayerCache,
  type ScanLayerProgress,
  scanLayer,
  scanLayerInputSchema,
  scanLayerResultSchema,
} from './units/scan-layer.js';
