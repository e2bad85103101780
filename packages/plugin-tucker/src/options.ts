import { z } from 'zod';

const rank = (which: string) =>
  z
    .number({ error: `${which} must be a number` })
    .int(`${which} must be a whole number, e.g. 16`)
    .min(1, `${which} must be at least 1`);

/**
 * Options of the Tucker strategy: exactly one of `ranks` ([r_in, r_out], the channels after the first 1×1
 * convolution and after the core convolution) or `ratio` (the fraction of the dense layer's parameters to keep;
 * the ranks are then proportional to the channel counts, as large as that budget allows).
 */
export const tuckerOptionsSchema = z
  .strictObject({
    ranks: z
      .tuple([rank('r_in (ranks[0])'), rank('r_out (ranks[1])')], {
        error: 'ranks must be [r_in, r_out], two whole numbers ≥ 1, e.g. [16, 32]',
      })
      .optional(),
    ratio: z
      .number({ error: 'ratio must be a number' })
      .gt(0, 'ratio must be > 0')
      .lte(1, {
        error: (issue) =>
          `ratio is the fraction of the dense parameters to keep, in (0, 1]; for ${issue.input}× compression use ${Number((1 / Number(issue.input)).toPrecision(3))}`,
      })
      .optional(),
  })
  .superRefine((options, ctx) => {
    if ((options.ranks === undefined) === (options.ratio === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: `give exactly one of ranks or ratio (got ${options.ranks === undefined ? 'neither' : 'both'}), e.g. { ratio: 0.5 }`,
      });
    }
  });

/** Validated Tucker options (the output of {@link tuckerOptionsSchema}). */
export type TuckerOptions = z.output<typeof tuckerOptionsSchema>;

/** Input accepted by {@link tuckerOptionsSchema}. */
export type TuckerOptionsInput = z.input<typeof tuckerOptionsSchema>;
