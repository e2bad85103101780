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
export { CalibrationError, PackedFormatError, PipelineError } from './errors.js';
export { packImageSet, unpackImageSet } from './image-sets.js';
export { loadPackedModel, type PackedModel, packModel, unpackModel } from './models.js';
