export { SvdError, SvdRankError, SvdTargetError } from './errors.js';
export {
  buildSvdDenseLayers,
  buildSvdLayers,
  type ConvActivation,
  type DenseActivation,
  type SvdLayerOptions,
} from './layers.js';
export {
  SVD_MODES,
  type SvdMode,
  type SvdOptions,
  type SvdOptionsInput,
  svdOptionsSchema,
} from './options.js';
export { maxRank, rankForParams, svdConvShapes, svdCost } from './rank.js';
export { SVD_VERSION, svdStrategy } from './strategy.js';
