export { type ModelMeasurement, measureModel } from '@decompose/pipeline';
export { registerCompareCommand } from './command.js';
export {
  type ArmConfig,
  armSchema,
  type BaselineConfig,
  type CompareConfig,
  type CompareConfigInput,
  compareConfigSchema,
  type Recipe,
  recipeSchema,
} from './config.js';
export { DEMO_PRESET, registerDemoCommand, runDemo } from './demo.js';
export { weightBytes } from './measure.js';
export { COMPARE_CHARTS, compareMarkdown, resultsCsv, writeCompareReport } from './report.js';
export type {
  ArmResult,
  ArmRow,
  ArmSeconds,
  BaselineResult,
  CompareResults,
  FailedArm,
  Phase,
  RewrittenLayer,
  StepLoss,
} from './results.js';
export { COMPARE_FILES } from './results.js';
export { runCompare } from './run.js';
