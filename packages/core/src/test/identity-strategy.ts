import { initializers, layers } from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { convCost } from '../cost.js';
import type { DecompositionStrategy } from '../strategy.js';

const optionsSchema = z.object({
  /** Unused by the rewrite; lets tests check option parsing and per-layer options. */
  ratio: z.number().gt(0).lte(1).default(1),
  /** Appended to the replacement's name; empty keeps the original name. */
  suffix: z.string().default('copy'),
});

/**
 * A test strategy that replaces a convolution by an equal convolution (same config and, with `trained`
 * init, the same weights), and refuses 1×1 convolutions.
 */
export const identityStrategy: DecompositionStrategy<z.infer<typeof optionsSchema>> = {
  name: 'identity',
  version: '1.0.0',
  description: 'Replaces a convolution by an identical one.',
  optionsSchema,
  supports(target) {
    if (target.conv === null) return { ok: false, reason: `it is a ${target.className}, not a convolution` };
    if (target.conv.kernelSize[0] === 1) return { ok: false, reason: '1×1 convolutions are already minimal' };
    return { ok: true };
  },
  decompose(target, options, context) {
    const config = target.layer.getConfig();
    const layer = layers.conv2d({
      ...(config as unknown as Parameters<typeof layers.conv2d>[0]),
      name: options.suffix === '' ? target.name : `${target.name}.${options.suffix}`,
      kernelInitializer: initializers.glorotUniform({ seed: context.seed }),
    });
    const weights =
      context.init === 'trained'
        ? [[target.kernel!.clone(), ...(target.bias ? [target.bias.clone()] : [])]]
        : [];
    return { layers: [layer], weights, info: { ratio: options.ratio } };
  },
  cost: (shape) => convCost(shape),
};
