import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type Cifar10Images, selectImages, splitCalibration } from '@decompose/cifar10';
import { z } from 'zod';
import { CalibrationError } from './errors.js';

/** Calibration images a scan measures on when neither the training run nor the command says how many. */
export const DEFAULT_CALIBRATION = 500;

/** zod schema of a {@link HoldOut}, as `decompose train --hold-out` records it in summary.json. */
export const holdOutSchema = z.object({
  count: z.number().int().positive(),
  seed: z.number().int().min(0),
  /** Training images the split was drawn from (after `limitTrain`). */
  from: z.number().int().positive(),
  /** Ascending indices of the held-out images among those. */
  indices: z.array(z.number().int().min(0)),
  /** Hash of the held-out images and labels: a later run checks it reads the same images. */
  fingerprint: z.string(),
});

/** The calibration split a training run kept out of training, enough to recreate it exactly. */
export type HoldOut = z.infer<typeof holdOutSchema>;

/** A calibration split and the rest of the training images, with the calibration images' indices. */
export interface CalibrationImages {
  calibration: Cifar10Images;
  rest: Cifar10Images;
  /** Ascending indices of the calibration images among the training images. */
  indices: Uint32Array;
}

/** A short hash of a set of images and their labels. */
export function imagesFingerprint(images: Cifar10Images): string {
  return createHash('sha256').update(images.images).update(images.labels).digest('hex').slice(0, 16);
}

/**
 * A stratified calibration split of `count` images held out of the training images (`@decompose/cifar10`'s
 * `splitCalibration` with `seed`), and the rest.
 *
 * @throws CalibrationError naming `field` when `count` is not smaller than the number of training images.
 */
export function calibrationSplit(
  trainImages: Cifar10Images,
  count: number,
  seed: number,
  field: string,
): CalibrationImages {
  if (!Number.isInteger(count) || count < 1 || count > trainImages.count - 1) {
    throw new CalibrationError(
      field,
      `got ${count}; must be a whole number in [1, ${trainImages.count - 1}] (the calibration split must be smaller than the ${trainImages.count} training images)`,
    );
  }
  const split = splitCalibration(trainImages, { count, seed });
  return { calibration: split.calibration, rest: split.train, indices: split.calibrationIndices };
}

/** The hold-out of `decompose train --hold-out`: the split, and its record for summary.json. */
export function holdOutSplit(
  trainImages: Cifar10Images,
  count: number,
  seed: number,
  field: string,
): CalibrationImages & { record: HoldOut } {
  const split = calibrationSplit(trainImages, count, seed, field);
  return {
    ...split,
    record: {
      count,
      seed,
      from: trainImages.count,
      indices: [...split.indices],
      fingerprint: imagesFingerprint(split.calibration),
    },
  };
}

function complement(total: number, indices: Uint32Array): Uint32Array {
  const held = new Uint8Array(total);
  for (const i of indices) held[i] = 1;
  return Uint32Array.from({ length: total }, (_, i) => i).filter((i) => held[i] === 0);
}

/** The indices of a hold-out among `trainImages`, or null when these are not the images it was split from. */
function matchHoldOut(trainImages: Cifar10Images, record: HoldOut): Uint32Array | null {
  const indices = Uint32Array.from(record.indices);
  if (!indices.every((i) => i < trainImages.count)) return null;
  return imagesFingerprint(selectImages(trainImages, indices)) === record.fingerprint ? indices : null;
}

/**
 * The images a training run held out, recreated from its record.
 *
 * @throws CalibrationError naming `field` when the training images read now are not those the run split (another
 *   data folder or `limitTrain`).
 */
export function heldOutImages(trainImages: Cifar10Images, record: HoldOut, field: string): CalibrationImages {
  const indices = matchHoldOut(trainImages, record);
  if (indices === null) {
    throw new CalibrationError(
      field,
      `the training run held out ${record.count} of its ${record.from} training images, but the ` +
        `${trainImages.count} training images read now are not the ones it split; give the same --data and ` +
        '--limit-train as the training run, or --calibration/--seed to split these images anew',
    );
  }
  return {
    calibration: selectImages(trainImages, indices),
    rest: selectImages(trainImages, complement(trainImages.count, indices)),
    indices,
  };
}

/**
 * How many of the calibration images at `indices` (among `trainImages`) a training run trained on: none when
 * it held them all out (`decompose train --hold-out`) of these same training images, all of them when it held
 * out nothing or held out images of another training set (other data or `--limit-train`). The one rule every
 * scan and benchmark uses to say whether its calibration images are unseen.
 */
export function calibrationSeenInTraining(
  trainImages: Cifar10Images,
  holdOut: HoldOut | null,
  indices: Uint32Array,
): number {
  const held = holdOut === null ? null : matchHoldOut(trainImages, holdOut);
  if (held === null) return indices.length;
  const heldSet = new Set(held);
  return indices.filter((i) => !heldSet.has(i)).length;
}

/** What the training run of a model says about its calibration images. */
export interface TrainingRecord {
  /** The run's seed, or null when it left no summary. */
  trainingSeed: number | null;
  /** Its hold-out, or null when it held none out (or left no summary). */
  holdOut: HoldOut | null;
}

/**
 * The {@link TrainingRecord} of a training run's summary (the JSON of `decompose train`'s summary.json, or null when
 * there is none): its seed when it is a count, and its hold-out when it has the shape of one (a hold-out of another
 * shape says nothing was held out, so every calibration image counts as seen).
 */
export function trainingRecordOf(summary: unknown): TrainingRecord {
  const { config, holdOut } = (summary ?? {}) as { config?: { seed?: unknown }; holdOut?: unknown };
  const seed = config?.seed;
  return {
    trainingSeed: typeof seed === 'number' && Number.isInteger(seed) && seed >= 0 ? seed : null,
    holdOut: holdOutSchema
      .nullable()
      .catch(null)
      .parse(holdOut ?? null),
  };
}

/** {@link trainingRecordOf} the summary file `file`; both null when the file does not exist. */
export async function readTrainingRecord(file: string): Promise<TrainingRecord> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  return trainingRecordOf(text === null ? null : JSON.parse(text));
}

/** The calibration images a scan uses, and what to log about them. */
export interface ResolvedCalibration extends CalibrationImages {
  seed: number;
  /** How the split was chosen, for the log. */
  description: string;
  /** A warning for the log when calibration images were (or may have been) seen in training, else null. */
  warning: string | null;
}

/**
 * The calibration split of a scan. By default the images the model's training run held out (`train
 * --hold-out`), exactly; with an explicit `count` or `seed`, or when the run held none out, a new split of
 * `count` (default: the hold-out's, else {@link DEFAULT_CALIBRATION}) with `seed` (default: the hold-out's,
 * else the training seed, else 0). The warning says how many calibration images the model was trained on.
 *
 * @throws CalibrationError when the held-out images cannot be recreated from the images read now, or the split is
 *   too large.
 */
export function resolveCalibration(
  trainImages: Cifar10Images,
  trained: TrainingRecord,
  request: { count?: number; seed?: number },
  fields: { count: string; model: string },
): ResolvedCalibration {
  const { holdOut, trainingSeed } = trained;
  if (holdOut !== null && request.count === undefined && request.seed === undefined) {
    return {
      ...heldOutImages(trainImages, holdOut, fields.model),
      seed: holdOut.seed,
      description: `the ${holdOut.count} training images the training run held out (seed ${holdOut.seed})`,
      warning: null,
    };
  }
  const count = request.count ?? holdOut?.count ?? DEFAULT_CALIBRATION;
  const seed = request.seed ?? holdOut?.seed ?? trainingSeed ?? 0;
  const split = calibrationSplit(trainImages, count, seed, fields.count);
  const source =
    request.seed !== undefined
      ? '--seed'
      : holdOut !== null
        ? "the training run's hold-out seed"
        : trainingSeed !== null
          ? "the training run's seed"
          : 'no training summary found: default';
  const description = `${count} training images, seed ${seed} (${source})`;
  const advice = `train with --hold-out ${count} and scan without --calibration and --seed to measure on unseen images`;
  if (trainingSeed === null) {
    return {
      ...split,
      seed,
      description,
      warning: `warning: no training summary beside the model, so the calibration images may have been seen in training; ${advice}`,
    };
  }
  if (holdOut !== null && matchHoldOut(trainImages, holdOut) === null) {
    return {
      ...split,
      seed,
      description,
      warning:
        'warning: the training run held out images of another training set (other --data or --limit-train), ' +
        'so the calibration images may have been seen in training',
    };
  }
  const seen = calibrationSeenInTraining(trainImages, holdOut, split.indices);
  return {
    ...split,
    seed,
    description,
    warning:
      seen === 0
        ? null
        : `warning: ${seen} of the ${count} calibration images were seen in training, so the measured sensitivities may be optimistic; ${advice}`,
  };
}
