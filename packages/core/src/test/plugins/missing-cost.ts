import { identityStrategy } from '../identity-strategy.js';

const { cost: _cost, ...withoutCost } = identityStrategy;
export default { ...withoutCost, version: 2, layerCosts: { BasisConv2D: 'cheap' } };
