import type { DecompositionStrategy } from '../strategy.js';
import { identityStrategy } from './identity-strategy.js';

/**
 * The identity strategy as a third-party strategy would write it: it accepts `Conv2D` targets only (by class name,
 * with a 4-D kernel) and records each target it rewrites, so tests see what surgery handed it.
 */
export function recordingConv2dIdentity(): {
  strategy: DecompositionStrategy<{ ratio: number; suffix: string }>;
  seen: { name: string; className: string; kernelShape: number[]; useBias: boolean }[];
} {
  const seen: { name: string; className: string; kernelShape: number[]; useBias: boolean }[] = [];
  return {
    seen,
    strategy: {
      ...identityStrategy,
      supports: (target) =>
        target.className === 'Conv2D' && target.conv !== null && target.kernel !== null
          ? { ok: true }
          : { ok: false, reason: `it is a ${target.className}, not a Conv2D` },
      decompose(target, options, context) {
        seen.push({
          name: target.name,
          className: target.className,
          kernelShape: target.kernel!.shape,
          useBias: target.bias !== null,
        });
        return identityStrategy.decompose(target, options, context);
      },
    },
  };
}
