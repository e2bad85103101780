import { z } from 'zod';

/**
 * Options of the basis strategy. Give either `ratio` (m = round(ratio · C_out), at least 1) or `m`
 * (the number of basis filters); with neither, `ratio` is 0.5.
 */
export const basisOptionsSchema = z
  .object({
    /** Fraction of a layer's output channels kept as trained basis filters, in (0, 1]. */
    ratio: z.number().gt(0, 'ratio must be > 0').lte(1, 'ratio must be ≤ 1').optional(),
    /** Number of basis filters, instead of `ratio`. */
    m: z.number().int('m must be an integer').positive('m must be ≥ 1').optional(),
    /**
     * `shrunk`: the first m outputs are the basis outputs, the other C_out − m are trained combinations
     * (A = [I; A']). `full`: every output is a trained combination (A is C_out × m).
     */
    form: z.enum(['shrunk', 'full']).default('shrunk'),
    /** Accept m = C_out (no saving; useful for checking equivalence). */
    allowFullRank: z.boolean().default(false),
  })
  .strict()
  .refine((o) => o.ratio === undefined || o.m === undefined, {
    message: 'give either ratio or m, not both',
  });

/** Validated basis options (the output of {@link basisOptionsSchema}). */
export type BasisOptions = z.output<typeof basisOptionsSchema>;

/** Input accepted by {@link basisOptionsSchema} (defaults not yet filled). */
export type BasisOptionsInput = z.input<typeof basisOptionsSchema>;

/** Number of basis filters m for a layer with `outChannels` outputs under `options`. */
export function basisSize(outChannels: number, options: Pick<BasisOptions, 'ratio' | 'm'>): number {
  if (options.m !== undefined) return options.m;
  return Math.max(1, Math.round((options.ratio ?? 0.5) * outChannels));
}
