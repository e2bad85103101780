export {
  type ArmEstimateInput,
  type ArmEvent,
  type ArmPhaseSeconds,
  type ArmPipelineInput,
  type ArmPipelineIO,
  type ArmPipelineResult,
  type ArmRecipe,
  armRecipeSchema,
  estimateArmSeconds,
  runArmPipeline,
  type StepLoss,
  type TestFigures,
} from './arm.js';
export {
  describeReestimation,
  reestimateOnTrainingImages,
  type TrainingImagesReestimation,
} from './batch-norm.js';
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
  readTrainingRecord,
  resolveCalibration,
  type TrainingRecord,
  trainingRecordOf,
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
  TrainingRunError,
} from './errors.js';
export { packImageSet, unpackImageSet } from './image-sets.js';
export { type ModelMeasurement, measureModel } from './measure.js';
export { loadModel, modelPlugins, PLUGINS_FILE, readModelInputShape, saveModel } from './model-files.js';
export { loadPackedModel, type PackedModel, packModel, unpackModel } from './models.js';
export { PIPELINE_QUEUE } from './queue.js';
export {
  type LayerRatios,
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
export { plural, type SgdSettings, sgdSettingsSchema, trainOptions } from './training.js';
export {
  type TrainingRunOutcome,
  type TrainingRunRequest,
  trainOnExecutor,
} from './training-run.js';
export {
  type ArmUnitResult,
  armUnit,
  armUnitInputSchema,
  armUnitResultSchema,
  selectionPlan,
} from './units/arm.js';
export {
  releaseScanLayerCache,
  type ScanLayerProgress,
  scanLayer,
  scanLayerInputSchema,
  scanLayerResultSchema,
} from './units/scan-layer.js';
export { dataBlobsSchema, epochMetricsSchema } from './units/shared.js';
export { trainingRunInputSchema, trainingRunResultSchema, trainingRunUnit } from './units/training-run.js';
