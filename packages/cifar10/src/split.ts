import { type Cifar10Images, classNamesOf, valuesPerImage, withFieldsOf } from './format.js';
import { deriveSeed, Rng } from './rng.js';

/** Options of {@link splitCalibration}: give exactly one of `count` and `fraction`. */
export interface CalibrationSplitOptions {
  /** Number of images to hold out (an integer, 1 .. images - 1). */
  readonly count?: number;
  /** Share of images to hold out (0 < fraction < 1), rounded to the nearest count. */
  readonly fraction?: number;
  /** Seed of the selection (default 0). */
  readonly seed?: number;
}

/** A data set divided into a held-out calibration part and the rest, used for training. */
export interface CalibrationSplit {
  /** The held-out images, in their original order. */
  readonly calibration: Cifar10Images;
  /** The remaining images, in their original order. */
  readonly train: Cifar10Images;
  /** Indices into the source of the calibration images (ascending). */
  readonly calibrationIndices: Uint32Array;
  /** Indices into the source of the training images (ascending). */
  readonly trainIndices: Uint32Array;
}

/** Copies the images and labels at `indices` into a new set. */
export function selectImages(data: Cifar10Images, indices: Uint32Array): Cifar10Images {
  const PIXELS_PER_IMAGE = valuesPerImage(data);
  const images = new Uint8Array(indices.length * PIXELS_PER_IMAGE);
  const labels = new Uint8Array(indices.length);
  for (const [i, index] of indices.entries()) {
    images.set(
      data.images.subarray(index * PIXELS_PER_IMAGE, (index + 1) * PIXELS_PER_IMAGE),
      i * PIXELS_PER_IMAGE,
    );
    labels[i] = data.labels[index]!;
  }
  return withFieldsOf({ images, labels, count: indices.length }, data);
}

function holdOutCount(total: number, options: CalibrationSplitOptions): number {
  const { count, fraction } = options;
  if ((count === undefined) === (fraction === undefined)) {
    throw new RangeError('splitCalibration needs exactly one of count and fraction.');
  }
  if (fraction !== undefined) {
    if (!(fraction > 0 && fraction < 1)) throw new RangeError(`fraction must be in (0, 1), got ${fraction}.`);
    return Math.min(total - 1, Math.max(1, Math.round(total * fraction)));
  }
  if (!Number.isInteger(count) || count! < 1 || count! >= total) {
    throw new RangeError(
      `count must be an integer in 1..${total - 1} (the set has ${total} images), got ${count}.`,
    );
  }
  return count!;
}

/**
 * Holds out a calibration split of a training set (for the sensitivity analysis), stratified by class:
 * each class gives its proportional share (largest remainders settle the rounding), chosen by a seeded
 * shuffle, so the same seed always gives the same split. The rest is the training split; the two are
 * disjoint and together are the whole set. The inputs are copied, so `data` can be released afterwards.
 *
 * @throws RangeError if not exactly one of `count` and `fraction` is given, or it is out of range.
 */
export function splitCalibration(data: Cifar10Images, options: CalibrationSplitOptions): CalibrationSplit {
  const total = data.count;
  const wanted = holdOutCount(total, options);
  const byClass: number[][] = Array.from({ length: classNamesOf(data).length }, () => []);
  for (let i = 0; i < total; i++) byClass[data.labels[i]!]!.push(i);

  // Proportional quotas, rounded down, then the remaining images go to the largest remainders.
  const exact = byClass.map((members) => (members.length * wanted) / total);
  const quota = exact.map(Math.floor);
  const byRemainder = exact.map((value, label) => ({ label, remainder: value - Math.floor(value) }));
  byRemainder.sort((x, y) => y.remainder - x.remainder || x.label - y.label);
  let missing = wanted - quota.reduce((sum, q) => sum + q, 0);
  for (const { label } of byRemainder) {
    if (missing === 0) break;
    quota[label]! += 1;
    missing -= 1;
  }

  const held = new Uint8Array(total);
  for (const [label, members] of byClass.entries()) {
    // One generator per class, so a class's choice does not depend on the others' sizes.
    Rng.fromSeed(deriveSeed(options.seed ?? 0, label)).shuffle(members);
    for (const index of members.slice(0, quota[label])) held[index] = 1;
  }
  const calibrationIndices = new Uint32Array(wanted);
  const trainIndices = new Uint32Array(total - wanted);
  let c = 0;
  let t = 0;
  for (let i = 0; i < total; i++) {
    if (held[i] === 1) calibrationIndices[c++] = i;
    else trainIndices[t++] = i;
  }
  return {
    calibration: selectImages(data, calibrationIndices),
    train: selectImages(data, trainIndices),
    calibrationIndices,
    trainIndices,
  };
}
