export {
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
  type Selection,
  selectGreedy,
  selectPerLayer,
} from './selection.js';
export {
  accuracyDrop,
  type LayerBaseline,
  type Metric,
  type ScanEntry,
  type SensitivityTable,
  sensitivityCsv,
  sensitivityTableSchema,
} from './table.js';
