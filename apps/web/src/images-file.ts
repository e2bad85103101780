// The page's test images as two files, independent of any data set's own format: `images.bin` (the pixels)
// and `images.json` (their geometry, labels, class names and normalisation). Browser-safe: the page reads
// them with the same code Node writes them with.
import {
  CIFAR10_MEAN,
  CIFAR10_STD,
  classNamesOf,
  type ImageSet,
  imageShapeOf,
  valuesPerImage,
} from '@decompose/cifar10/browser';
import { WebError } from './errors.js';

/** The version of {@link SiteImagesManifest} this package writes and reads. */
export const SITE_IMAGES_VERSION = 1;

/**
 * `images.json`: what `images.bin` holds. The pixels are `count × height × width × channels` bytes, NHWC
 * (row-major, channels interleaved), already resized to the models' input size and not normalised; the
 * models see `(byte / 255 − mean[c]) / std[c]` for channel `c`.
 */
export interface SiteImagesManifest {
  /** {@link SITE_IMAGES_VERSION}. */
  version: typeof SITE_IMAGES_VERSION;
  /** The pixel file, relative to the manifest's URL (`images.bin`). */
  file: string;
  /** Where the images came from, for people reading the page (e.g. `CIFAR-10 test_batch.bin`). */
  source: string;
  count: number;
  height: number;
  width: number;
  channels: number;
  /** The label of each image, an index into `classNames`. */
  labels: number[];
  /** The class names, indexed by label (and by the models' output units). */
  classNames: string[];
  /** Per-channel mean of pixels scaled to [0, 1]. */
  mean: number[];
  /** Per-channel standard deviation of pixels scaled to [0, 1]. */
  std: number[];
}

/** Thrown when an `images.json` + `images.bin` pair (or the image set they are made from) is inconsistent. */
export class SiteImagesError extends WebError {
  override readonly name = 'SiteImagesError';
  constructor(
    /** Names the images (a URL, a file or the data set). */
    readonly source: string,
    problem: string,
  ) {
    super(`The test images ${source} ${problem}.`);
  }
}

const isWhole = (value: unknown, min: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min;

/**
 * Checks a parsed `images.json` and its pixel bytes against each other and returns them as an image set
 * (shape, class names and normalisation filled in), ready for `normalizeImageSet`.
 *
 * @param source - names the images in errors (the manifest's URL or path).
 * @throws SiteImagesError naming the first field that is missing or does not fit the others.
 */
export function readSiteImages(manifest: unknown, pixels: Uint8Array, source: string): ImageSet {
  const fail = (problem: string): never => {
    throw new SiteImagesError(source, problem);
  };
  if (typeof manifest !== 'object' || manifest === null) return fail('have no manifest object');
  const m = manifest as Partial<Record<keyof SiteImagesManifest, unknown>>;
  if (m.version !== SITE_IMAGES_VERSION) {
    fail(
      `have manifest version ${JSON.stringify(m.version)}; this page reads version ${SITE_IMAGES_VERSION}`,
    );
  }
  const { count, height, width, channels, labels, classNames, mean, std } = m;
  if (!isWhole(count, 1)) return fail(`have count ${JSON.stringify(count)}; it must be a whole number ≥ 1`);
  if (!isWhole(height, 1) || !isWhole(width, 1) || !isWhole(channels, 1)) {
    return fail(
      `have shape ${JSON.stringify([height, width, channels])}; each side must be a whole number ≥ 1`,
    );
  }
  if (
    !Array.isArray(classNames) ||
    classNames.length === 0 ||
    !classNames.every((n) => typeof n === 'string')
  ) {
    return fail('have no list of class names (classNames)');
  }
  if (!Array.isArray(labels) || labels.length !== count) {
    return fail(`have ${Array.isArray(labels) ? labels.length : 'no'} labels for ${count} images`);
  }
  const badLabel = labels.findIndex((label) => !isWhole(label, 0) || label >= classNames.length);
  if (badLabel >= 0) {
    fail(`give image ${badLabel} the label ${labels[badLabel]}, but there are ${classNames.length} classes`);
  }
  for (const [name, values] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (!Array.isArray(values) || values.length !== channels || !values.every((v) => Number.isFinite(v))) {
      fail(`need ${channels} numbers as ${name} (one a channel); got ${JSON.stringify(values)}`);
    }
  }
  if ((std as number[]).some((s) => s <= 0))
    fail(`have std ${JSON.stringify(std)}; every std must be positive`);
  const expected = count * height * width * channels;
  if (pixels.length !== expected) {
    fail(
      `have ${pixels.length} bytes of pixels; ${count} images of ${height}×${width}×${channels} are ${expected}`,
    );
  }
  return {
    images: pixels,
    labels: Uint8Array.from(labels as number[]),
    count,
    shape: [height, width, channels],
    classNames: classNames as string[],
    mean: mean as number[],
    std: std as number[],
  };
}

/**
 * The manifest and pixel bytes of an image set (CIFAR-10's shape, class names and normalisation where it
 * gives none), checked as the page will check them.
 *
 * @param file - the pixel file's name, relative to the manifest.
 * @throws SiteImagesError if the set is inconsistent (e.g. a label beyond its class names).
 */
export function writeSiteImages(
  set: ImageSet,
  source: string,
  file: string,
): { manifest: SiteImagesManifest; pixels: Uint8Array } {
  const [height, width, channels] = imageShapeOf(set);
  const manifest: SiteImagesManifest = {
    version: SITE_IMAGES_VERSION,
    file,
    source,
    count: set.count,
    height,
    width,
    channels,
    labels: Array.from(set.labels.subarray(0, set.count)),
    classNames: [...classNamesOf(set)],
    mean: [...(set.mean ?? CIFAR10_MEAN)],
    std: [...(set.std ?? CIFAR10_STD)],
  };
  const pixels = set.images.subarray(0, set.count * valuesPerImage(set));
  readSiteImages(manifest, pixels, source);
  return { manifest, pixels };
}

/** The first `limit` images of `set` (all of them when it holds fewer), sharing its buffers. */
export function firstImages(set: ImageSet, limit: number): ImageSet {
  const count = Math.min(set.count, Math.max(0, Math.floor(limit)));
  if (count === set.count) return set;
  return {
    ...set,
    images: set.images.subarray(0, count * valuesPerImage(set)),
    labels: set.labels.subarray(0, count),
    count,
  };
}

/** A shape as the page and its errors print it, e.g. `[batch, 24, 24, 3]`. */
export function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? 'batch' : d)).join(', ')}]`;
}
