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
  DEFAULT_QUEUE_NAME,
  layersFieldSchema,
  queueNameSchema,
  queueUrlSchema,
  type SensitivityConfig,
  scanFields,
  sensitivityConfigSchema,
} from './config.js';
export {
  matchLayers,
  runScan,
  type ScanQueue,
  type ScanRequest,
  scanLayers,
  scanWorkerCount,
  weightsFingerprint,
} from './scan.js';
export { locateTrainedModel, type TrainedModel } from './trained.js';
