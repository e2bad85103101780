export { budgetFieldSchema, ratiosFieldSchema } from './budget.js';
export {
  registerSensitivityCommand,
  runSensitivity,
  SENSITIVITY_FILES,
  type SensitivityResult,
  select,
  selectionDetails,
} from './command.js';
export {
  layersFieldSchema,
  type SensitivityConfig,
  scanFields,
  sensitivityConfigSchema,
} from './config.js';
export {
  matchLayers,
  runScan,
  type ScanRequest,
  scanLayers,
  scanWorkerCount,
  weightsFingerprint,
} from './scan.js';
export { locateTrainedModel, type TrainedModel } from './trained.js';
