export {
  type BatchNormReestimation,
  DEFAULT_REESTIMATION_BATCH,
  type ReestimateBatchNormOptions,
  reestimateBatchNorm,
} from './batch-norm-statistics.js';
export { cloneLayer } from './clone.js';
export { addCosts, convCost, withConv } from './cost.js';
export {
  type CostAwareLayer,
  type CostRow,
  type CostSource,
  type CostTable,
  type CostTableOptions,
  costTable,
  registerLayerCost,
} from './cost-table.js';
export { type CutOptions, cutModel, downstreamFrontier, type ModelCut, type TensorRef } from './cut.js';
export {
  CoreError,
  DuplicateStrategyError,
  InvalidDecompositionError,
  InvalidLoweringError,
  InvalidPluginError,
  NonFiniteWeightsError,
  type OptionIssue,
  PluginImportError,
  SelectionError,
  StrategyError,
  StrategyOptionsError,
  UnknownLayerError,
  UnknownStrategyError,
  UnloweredLayerError,
  UnsupportedLayerError,
  UnsupportedModelError,
} from './errors.js';
export {
  type ExportStockOptions,
  exportStock,
  isStockLayerClass,
  type LayerLowering,
  type LoweredLayer,
  maxOutputDifference,
  type StockExport,
  type StockLowerableLayer,
  type StockLowering,
} from './export.js';
export {
  type AffineFold,
  type AffineFoldableLayer,
  type ChannelAffine,
  type InferenceFold,
  type InferenceModel,
  inferenceModel,
  type UnfoldedBatchNorm,
} from './inference.js';
export { parseStrategyOptions } from './options.js';
export { StrategyRegistry } from './registry.js';
export { type LayerSelection, layerNameMatcher } from './select.js';
export type {
  ConvShape,
  DecomposeContext,
  Decomposition,
  DecompositionStrategy,
  DenseShape,
  InitMode,
  Layer,
  LayerCost,
  LayerCostContext,
  LayerCostFunction,
  Shape,
  Support,
  TargetLayer,
} from './strategy.js';
export {
  type ApplyStrategyOptions,
  applyStrategy,
  type LayerReplacement,
  layerSeed,
  type PlannedLayer,
  planStrategy,
  type SkippedLayer,
  type StrategyPlan,
  type SurgeryResult,
} from './surgery.js';
export {
  denseAsConv,
  describeLayer,
  graphOf,
  listTargets,
  targetShape,
  unsupportedReason,
} from './target.js';
export { type LayerTiming, type MeasureLayerTimesOptions, measureLayerTimes } from './timing.js';
