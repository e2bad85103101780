export { addCosts, convCost, withConv } from './cost.js';
export type {
  ConvShape,
  DecomposeContext,
  Decomposition,
  DecompositionStrategy,
  InitMode,
  Layer,
  LayerCost,
  Support,
  TargetLayer,
} from './strategy.js';
