import { identityStrategy } from '../identity-strategy.js';

export const strategy = identityStrategy;
