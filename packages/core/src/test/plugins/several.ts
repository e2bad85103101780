import { identityStrategy } from '../identity-strategy.js';

export const strategies = [identityStrategy, { ...identityStrategy, name: 'identity-2' }];
export default { not: 'used, strategies wins' };
