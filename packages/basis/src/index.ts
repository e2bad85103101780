export {
  BASIS_ACTIVATIONS,
  type BasisActivation,
  BasisConv2D,
  type BasisConv2DArgs,
  type BasisExecution,
  type BasisForm,
  type DenseConvConfig,
} from './basis-conv2d.js';
export {
  BASIS_DENSE_ACTIVATIONS,
  BasisDense,
  type BasisDenseActivation,
  type BasisDenseArgs,
} from './basis-dense.js';
export { basisCost, factoredPays } from './cost.js';
export { BasisConfigError, BasisConversionError, BasisError } from './errors.js';
export { lowerBasisConv2D } from './export.js';
export { type BasisFit, fitBasis } from './fit.js';
export { type BasisOptions, type BasisOptionsInput, basisOptionsSchema, basisSize } from './options.js';
export {
  type BasisSchedule,
  type BasisTrainingPlan,
  basisScheduleSchema,
  convertToBasis,
  planBasisTraining,
} from './schedule.js';
export {
  BASIS_VERSION,
  basisDenseFromTrained,
  basisFromTrained,
  basisStrategy,
  basisSupports,
  type TrainedConv,
  type TrainedDense,
} from './strategy.js';
