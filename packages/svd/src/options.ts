import { z } from 'zod';

/** `weight`: k×k conv to r channels, then 1×1 to C_out. `spatial`: k×1 conv to r channels, then 1×k to C_out. */
export const SVD_MODES = ['weight', 'spatial'] as const;
export type SvdMode = (typeof SVD_MODES)[number];

const RANK_CHOICES = ['rank', 'ratio', 'energy'] as const;

/**
 * Options of the SVD strategy: the `mode` (default `weight`) and exactly one way to choose the rank r:
 * `rank` (r itself), `ratio` (the largest r whose parameters are at most ratio × the dense layer's), or
 * `energy` (the smallest r keeping that fraction of Σσ² of the trained weights).
 */
export const svdOptionsSchema = z
  .strictObject({
    mode: z
      .enum(SVD_MODES, { error: "mode must be 'weight' (k×k then 1×1) or 'spatial' (k×1 then 1×k)" })
      .default('weight'),
    /** The rank r: channels between the two convolutions. */
    rank: z
      .number({ error: 'rank must be a number' })
      .int('rank must be a whole number, e.g. 16')
      .min(1, 'rank must be at least 1')
      .optional(),
    /** Fraction of the dense layer's parameters the two convolutions may use, in (0, 1]. */
    ratio: z
      .number({ error: 'ratio must be a number' })
      .gt(0, 'ratio must be > 0')
      .lte(1, {
        error: (issue) =>
          `ratio is the fraction of the dense parameters to keep, in (0, 1]; for ${issue.input}× compression use ${Number((1 / Number(issue.input)).toPrecision(3))}`,
      })
      .optional(),
    /** Fraction of the trained weights' energy Σσ² to retain, in (0, 1]. */
    energy: z
      .number({ error: 'energy must be a number' })
      .gt(0, 'energy must be > 0')
      .lte(1, 'energy is a fraction of Σσ², in (0, 1]; e.g. 0.9 keeps 90 %')
      .optional(),
  })
  .superRefine((options, ctx) => {
    const given = RANK_CHOICES.filter((key) => options[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `give exactly one of rank, ratio or energy (got ${given.length === 0 ? 'none' : given.join(' and ')}), e.g. { ratio: 0.5 }`,
      });
    }
  });

/** Validated SVD options (the output of {@link svdOptionsSchema}). */
export type SvdOptions = z.output<typeof svdOptionsSchema>;

/** Input accepted by {@link svdOptionsSchema} (defaults not yet filled). */
export type SvdOptionsInput = z.input<typeof svdOptionsSchema>;
