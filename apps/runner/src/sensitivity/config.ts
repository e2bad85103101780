import { DEFAULT_CALIBRATION } from '@decompose/pipeline';
import { SENSITIVITY_METRICS } from '@decompose/sensitivity';
import { z } from 'zod';
import {
  bounded,
  dataFields,
  defaultWorkers,
  LIMITS,
  queueFields,
  seedField,
  trainConfigSchema,
  wholeNumber,
} from '../config.js';
import { budgetFieldSchema, ratiosFieldSchema } from './budget.js';

const shared = trainConfigSchema.shape;

/** Layer names or globs: a list, or comma-separated text from the command line. */
export const layersFieldSchema = z
  .union([z.string().transform((text) => text.split(',').map((s) => s.trim())), z.array(z.string())])
  .pipe(z.array(z.string().min(1, 'layer names and globs must not be empty')).min(1));

const calibrationCount = wholeNumber('calibration', 1, LIMITS.images);

/** Sensitivity scan settings shared by `decompose sensitivity` and a compare arm's `select`. */
export const scanFields = {
  ratios: ratiosFieldSchema.default([0.25, 0.5, 0.75]),
  /** Images held out of the training data to measure each entry on. */
  calibration: calibrationCount.default(DEFAULT_CALIBRATION),
  /** SGD steps of fine-tuning after each single-layer decomposition (0: none). */
  fineTuneSteps: wholeNumber('fineTuneSteps', 0, LIMITS.steps).default(0),
  fineTuneLr: bounded('fineTuneLr', { min: 0, max: LIMITS.lr, minOpen: true }, 'e.g. 0.01').default(0.01),
  /** Measure each entry's forward+backward time (needed for `time:` budgets). */
  measureTime: z.boolean().default(false),
  selector: z.enum(['greedy', 'per-layer']).default('greedy'),
  /**
   * Sensitivity the selector ranks and bounds by: calibration accuracy drop, or loss increase (finer on a small
   * calibration split, where accuracy moves in steps of 1/N). A `drop:D` budget is in the same units.
   */
  metric: z.enum(SENSITIVITY_METRICS).default('accuracy'),
  /**
   * Worker threads the scan's layers are split over (0 or 1: this thread); a scan with fine-tune steps or
   * timing stays on this thread. Default: the command's training workers, if it trains, else one per core.
   */
  workers: wholeNumber('workers', 0, LIMITS.workers, '0 or 1 scans on this thread').optional(),
};

/** `decompose sensitivity`. */
export const sensitivityConfigSchema = z
  .strictObject({
    modelDir: z.string().min(1, 'modelDir is the trained model (folder holding model.json)'),
    strategy: z.string().min(1, 'strategy is basis, svd, tucker, or a plugin package name or path'),
    layers: layersFieldSchema.optional(),
    ...scanFields,
    /** Default: the images the training run held out (`train --hold-out`), else a new split of 500. */
    calibration: calibrationCount.optional(),
    budget: budgetFieldSchema.optional(),
    workers: scanFields.workers.default(() => defaultWorkers()),
    /** `redis://HOST:PORT[/DB]`: run the scan's units on `decompose worker` processes through this Redis. */
    ...queueFields,
    batch: shared.batch,
    /** Seed of a new calibration split; default the hold-out's, else the seed the model was trained with. */
    seed: seedField('seed').optional(),
    ...dataFields,
    out: z.string().min(1, 'out is the folder for sensitivity.json, .csv, the heatmap and the cache'),
  })
  .refine((c) => c.data === undefined || !c.download, {
    message: 'give either data or download, not both',
    path: ['download'],
  });
export type SensitivityConfig = z.output<typeof sensitivityConfigSchema>;
