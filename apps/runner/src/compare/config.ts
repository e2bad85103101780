import { ARCHITECTURES, INITS, SHORTCUTS } from '@decompose/resnet';
import { z } from 'zod';
import {
  batchField,
  bnImagesFieldSchema,
  compressConfigSchema,
  dataFields,
  LIMITS,
  queueFields,
  trainConfigSchema,
  wholeNumber,
} from '../config.js';
import { budgetFieldSchema } from '../sensitivity/budget.js';
import { layersFieldSchema, scanFields } from '../sensitivity/config.js';

const shared = trainConfigSchema.shape;

/** SGD settings and length of one training run (the fields `decompose train` takes for them). */
const recipeFields = {
  epochs: shared.epochs,
  batch: shared.batch,
  lr: shared.lr,
  momentum: shared.momentum,
  nesterov: shared.nesterov,
  weightDecay: shared.weightDecay,
  decayOn: shared.decayOn,
  schedule: shared.schedule,
  milestones: shared.milestones,
  gamma: shared.gamma,
  warmupEpochs: shared.warmupEpochs,
  labelSmoothing: shared.labelSmoothing,
  augment: shared.augment,
  workers: shared.workers,
  seed: shared.seed,
};

/**
 * What every arm gets after its surgery, identical for all: BatchNorm re-estimation on `bnImages` augmented
 * training images, then the fine-tuning recipe (epochs, learning rate schedule, batch…).
 */
export const recipeSchema = z.strictObject({
  ...recipeFields,
  epochs: wholeNumber('epochs', 1, LIMITS.epochs).default(2),
  lr: compressConfigSchema.shape.lr,
  bnImages: bnImagesFieldSchema,
});
export type Recipe = z.output<typeof recipeSchema>;

/** The trained baseline: an existing model, or one trained here with this recipe. */
export const baselineSchema = z.strictObject({
  /** A trained model (folder holding model.json, or a `decompose train` run folder); absent: train one. */
  modelDir: z.string().min(1).optional(),
  model: z.enum(ARCHITECTURES).default('resnet20'),
  shortcut: z.enum(SHORTCUTS).optional(),
  init: z.enum(INITS).optional(),
  ...recipeFields,
});
export type BaselineConfig = z.output<typeof baselineSchema>;

/** An arm's sensitivity-based selection: scan the candidate layers, then select for the budget. */
export const armSelectSchema = z.strictObject({
  budget: budgetFieldSchema,
  ...scanFields,
});

/** One compressed model of the comparison. */
export const armSchema = z.strictObject({
  /** Names the arm in the report and its folder (`arms/<name>/`). */
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'name must be letters, digits, ".", "_" or "-", e.g. basis-0.5'),
  /** `basis`, `svd`, `tucker`, or a plugin package name or file path. */
  strategy: z.string().min(1),
  /** The strategy's options for every rewritten layer (a selection's per-layer ratio overrides its ratio). */
  options: z.record(z.string(), z.unknown()).default({}),
  /**
   * Layer names or globs to rewrite (with `select`: the candidates of the scan); default every layer the
   * strategy supports (convolutions and Dense layers), as for `applyStrategy`, with `select` or without.
   */
  layers: layersFieldSchema.optional(),
  select: armSelectSchema.optional(),
});
export type ArmConfig = z.output<typeof armSchema>;

/** `decompose compare`. */
export const compareConfigSchema = z
  .strictObject({
    /** Names the report folder: `<reportDir>/<run>/`. */
    run: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'run must be letters, digits, ".", "_" or "-"')
      .default('compare'),
    reportDir: z.string().min(1).default('reports'),
    /** Run the baseline training and the arms as units on this Redis queue (absent: in this process). */
    ...queueFields,
    /** The images, as for the other commands: CIFAR-10 or an image folder (its size, normalisation, test split). */
    ...dataFields,
    baseline: baselineSchema.default(baselineSchema.parse({})),
    fineTune: recipeSchema.default(recipeSchema.parse({})),
    /** Timed throughput steps (after one warm-up) and their batch. */
    measure: z
      .strictObject({
        batch: batchField().default(32),
        steps: wholeNumber('steps', 1, LIMITS.steps).default(3),
      })
      .default({ batch: 32, steps: 3 }),
    arms: z
      .array(armSchema, {
        error:
          'expected a list of arms ({ name, strategy, options, layers | select }); give the config with --config',
      })
      .min(1, 'give at least one arm (strategy and options) to compare'),
  })
  .refine((c) => c.data === undefined || !c.download, {
    message: 'give either data or download, not both',
    path: ['download'],
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    for (const [i, arm] of c.arms.entries()) {
      if (seen.has(arm.name))
        ctx.addIssue({
          code: 'custom',
          path: ['arms', i, 'name'],
          message: 'arm names must be unique (they name the report folders)',
        });
      seen.add(arm.name);
    }
    // A baseline trained by compare keeps one calibration split out of its training: every selecting arm must
    // scan on that same split.
    const counts = c.arms.flatMap((arm, i) => (arm.select ? [{ i, count: arm.select.calibration }] : []));
    const first = counts[0];
    for (const { i, count } of counts.slice(1)) {
      if (first !== undefined && count !== first.count)
        ctx.addIssue({
          code: 'custom',
          path: ['arms', i, 'select', 'calibration'],
          message: `every arm that selects layers scans the same calibration split, held out of the baseline's training; got ${count} here and ${first.count} in arms.${first.i}`,
        });
    }
  });

/** Calibration images the arms of `config` scan on (held out of a baseline trained by compare), or null. */
export function calibrationCount(config: CompareConfig): number | null {
  return config.arms.find((arm) => arm.select !== undefined)?.select?.calibration ?? null;
}
export type CompareConfig = z.output<typeof compareConfigSchema>;
/** A compare configuration as written (defaults not yet filled), e.g. the demo preset. */
export type CompareConfigInput = z.input<typeof compareConfigSchema>;
