import { tuckerStrategy } from './strategy.js';

export { TuckerError, TuckerRankError, TuckerTargetError } from './errors.js';
export { hosvd, type TuckerFactors } from './hosvd.js';
export { type TuckerOptions, type TuckerOptionsInput, tuckerOptionsSchema } from './options.js';
export { planRanks, ranksForRatio, type TuckerRanks, tuckerConvShapes, tuckerCost } from './ranks.js';
export { TUCKER_VERSION, tuckerStrategy } from './strategy.js';

/** The plugin's strategy: `loadStrategyPlugin('decompose-plugin-tucker')` picks up this default export. */
export default tuckerStrategy;
