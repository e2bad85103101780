export { DEFAULT_CALIBRATION_BATCH, type LabelledImages } from './calibration.js';
export { SensitivityError } from './errors.js';
export {
  calibrationBaseline,
  layerCost,
  type ScanCache,
  type ScanOptions,
  type ScanProgress,
  scanEntryKey,
  scanSensitivity,
} from './scan.js';
export {
  type Budget,
  BudgetError,
  type BudgetTarget,
  budgetSchema,
  type Choice,
  type CostTotals,
  SENSITIVITY_METRICS,
  type Selection,
  type SelectOptions,
  type SensitivityMetric,
  selectGreedy,
  selectPerLayer,
} from './selection.js';
export {
  accuracyDrop,
  type LayerBaseline,
  lossIncrease,
  type Metric,
  type ScanEntry,
  type SensitivityTable,
  sensitivityCsv,
  sensitivityTableSchema,
} from './table.js';
