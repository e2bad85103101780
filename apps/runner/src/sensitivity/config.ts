import { z } from 'zod';
import { trainConfigSchema } from '../config.js';
import { budgetFieldSchema, ratiosFieldSchema } from './budget.js';

const shared = trainConfigSchema.shape;

/** Layer names or globs: a list, or comma-separated text from the command line. */
export const layersFieldSchema = z
  .union([z.string().transform((text) => text.split(',').map((s) => s.trim())), z.array(z.string())])
  .pipe(z.array(z.string().min(1, 'layer names and globs must not be empty')).min(1));

/** Sensitivity scan settings shared by `decompose sensitivity` and a compare arm's `select`. */
export const scanFields = {
  ratios: ratiosFieldSchema.default([0.25, 0.5, 0.75]),
  /** Images held out of the training data to measure each entry on. */
  calibration: z
    .number()
    .int('calibration must be a whole number of images')
    .positive('calibration must be ≥ 1 image')
    .default(500),
  /** SGD steps of fine-tuning after each single-layer decomposition (0: none). */
  fineTuneSteps: z.number().int().min(0, 'fineTuneSteps must be ≥ 0').default(0),
  fineTuneLr: z.number().positive('fineTuneLr must be > 0, e.g. 0.01').default(0.01),
  /** Measure each entry's forward+backward time (needed for `time:` budgets). */
  measureTime: z.boolean().default(false),
  selector: z.enum(['greedy', 'per-layer']).default('greedy'),
};

/** `decompose sensitivity`. */
export const sensitivityConfigSchema = z
  .strictObject({
    modelDir: z.string().min(1, 'modelDir is the trained model (folder holding model.json)'),
    strategy: z.string().min(1, 'strategy is basis, svd, tucker, or a plugin package name or path'),
    layers: layersFieldSchema.optional(),
    ...scanFields,
    budget: budgetFieldSchema.optional(),
    batch: shared.batch,
    /** Seed of the calibration split; default the seed the model was trained with. */
    seed: z.number().int().min(0).optional(),
    data: shared.data,
    download: shared.download,
    cacheDir: shared.cacheDir,
    limitTrain: shared.limitTrain,
    limitTest: shared.limitTest,
    out: z.string().min(1, 'out is the folder for sensitivity.json, .csv, the heatmap and the cache'),
  })
  .refine((c) => c.data === undefined || !c.download, {
    message: 'give either data or download, not both',
    path: ['download'],
  });
export type SensitivityConfig = z.output<typeof sensitivityConfigSchema>;
