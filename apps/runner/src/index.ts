export { type BenchResult, runBench } from './bench.js';
export { type CommandDeps, commandAction } from './command.js';
export {
  type CompareConfig,
  type CompareResults,
  compareConfigSchema,
  DEMO_PRESET,
  registerCompareCommand,
  runCompare,
  runDemo,
} from './compare/index.js';
export { type CompressSummary, type ModelFigures, runCompress } from './compress.js';
export {
  type BenchConfig,
  benchConfigSchema,
  type CompressConfig,
  compressConfigSchema,
  defaultWorkers,
  type EvalConfig,
  evalConfigSchema,
  type InspectConfig,
  inspectConfigSchema,
  resolveConfig,
  type TrainConfig,
  trainConfigSchema,
} from './config.js';
export { describeEngine } from './engine-report.js';
export {
  ConfigError,
  isTypedError,
  NoCheckpointError,
  OutputFileError,
  RunnerError,
  reportError,
} from './errors.js';
export { runEval } from './eval.js';
export {
  EXPORT_TOLERANCE,
  type ExportConfig,
  ExportMismatchError,
  type ExportSummary,
  exportConfigSchema,
  registerExportCommand,
  runExport,
} from './export.js';
export { type InspectReport, type InspectRow, runInspect } from './inspect.js';
export { createProgram, type ProgramIo, runCli } from './program.js';
export { Console, type ConsoleOptions } from './progress.js';
export { registerSensitivityCommand, runSensitivity, sensitivityConfigSchema } from './sensitivity/index.js';
export { formatSmoke, runSmoke, type SmokeResult } from './smoke.js';
export { RUN_FILES, runTrain, type TrainSummary } from './train.js';
