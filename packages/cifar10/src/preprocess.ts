import { CHANNELS, IMAGE_SIZE, PIXELS_PER_IMAGE } from './format.js';
import type { Rng } from './rng.js';

/**
 * Per-channel (R, G, B) mean of the 50,000 CIFAR-10 training images, pixels scaled to [0, 1].
 * These are the values torchvision-based CIFAR-10 references pass to `transforms.Normalize` (e.g.
 * Lightning Bolts' `cifar10_normalization`, kuangliu/pytorch-cifar issue #19) and can be recomputed from
 * the training set. The often-copied std `0.2023, 0.1994, 0.2010` is instead the mean of per-image stds.
 */
export const CIFAR10_MEAN: readonly [number, number, number] = [0.4914, 0.4822, 0.4465];
/** Per-channel (R, G, B) standard deviation over all training pixels, pixels scaled to [0, 1] (see {@link CIFAR10_MEAN}). */
export const CIFAR10_STD: readonly [number, number, number] = [0.247, 0.2435, 0.2616];

/** Padding of the random crop, in pixels on each side (torchvision `RandomCrop(32, padding=4)`). */
export const CROP_PADDING = 4;

/** Normalisation as a lookup table: entry `c * 256 + v` is `(v / 255 - mean[c]) / std[c]`. */
export type NormalizeTable = Float32Array;

/** Builds the table mapping every byte value of every channel to its normalised float. */
export function createNormalizeTable(
  mean: readonly number[] = CIFAR10_MEAN,
  std: readonly number[] = CIFAR10_STD,
): NormalizeTable {
  if (mean.length !== CHANNELS || std.length !== CHANNELS || std.some((s) => !(s > 0))) {
    throw new RangeError(
      `mean and std need ${CHANNELS} values each and std must be positive; got mean [${mean}], std [${std}].`,
    );
  }
  const table = new Float32Array(CHANNELS * 256);
  for (let channel = 0; channel < CHANNELS; channel++) {
    for (let value = 0; value < 256; value++) {
      table[channel * 256 + value] = (value / 255 - mean[channel]!) / std[channel]!;
    }
  }
  return table;
}

/** How one image is cropped and flipped; the identity is `{ offsetY: 4, offsetX: 4, flip: false }`. */
export interface CropFlip {
  /** Top row of the 32×32 crop in the 40×40 zero-padded image (0..8). */
  readonly offsetY: number;
  /** Left column of the crop in the padded image (0..8). */
  readonly offsetX: number;
  /** Mirror the crop left-right (applied after the crop, as torchvision's transforms run). */
  readonly flip: boolean;
}

const SPAN = 2 * CROP_PADDING + 1;

/** Draws one image's crop offsets and flip: three draws from `rng`, always in this order. */
export function drawCropFlip(rng: Rng): CropFlip {
  const offsetY = rng.nextInt(SPAN);
  const offsetX = rng.nextInt(SPAN);
  const flip = rng.nextUint32() >= 0x80000000;
  return { offsetY, offsetX, flip };
}

/**
 * Writes image `index` of `images` (NHWC bytes) into `out` at float offset `at`, normalised through
 * `table`, cropped and flipped as `cropFlip` says (or unchanged if it is undefined). Padding pixels are
 * black (byte 0) before normalisation, as torchvision pads the image before `Normalize` runs.
 */
export function writeImage(
  images: Uint8Array,
  index: number,
  table: NormalizeTable,
  out: Float32Array,
  at: number,
  cropFlip?: CropFlip,
): void {
  const source = index * PIXELS_PER_IMAGE;
  if (cropFlip === undefined) {
    for (let i = 0; i < PIXELS_PER_IMAGE; i += CHANNELS) {
      out[at + i] = table[images[source + i]!]!;
      out[at + i + 1] = table[256 + images[source + i + 1]!]!;
      out[at + i + 2] = table[512 + images[source + i + 2]!]!;
    }
    return;
  }
  const shiftY = cropFlip.offsetY - CROP_PADDING;
  const shiftX = cropFlip.offsetX - CROP_PADDING;
  const padR = table[0]!;
  const padG = table[256]!;
  const padB = table[512]!;
  let o = at;
  for (let y = 0; y < IMAGE_SIZE; y++) {
    const sy = y + shiftY;
    const rowInside = sy >= 0 && sy < IMAGE_SIZE;
    for (let x = 0; x < IMAGE_SIZE; x++) {
      const sx = (cropFlip.flip ? IMAGE_SIZE - 1 - x : x) + shiftX;
      if (rowInside && sx >= 0 && sx < IMAGE_SIZE) {
        const s = source + (sy * IMAGE_SIZE + sx) * CHANNELS;
        out[o] = table[images[s]!]!;
        out[o + 1] = table[256 + images[s + 1]!]!;
        out[o + 2] = table[512 + images[s + 2]!]!;
      } else {
        out[o] = padR;
        out[o + 1] = padG;
        out[o + 2] = padB;
      }
      o += CHANNELS;
    }
  }
}

/**
 * Normalises (without augmentation) `count` images starting at image `start` into a new Float32Array
 * (NHWC), e.g. a calibration or evaluation set that fits in memory.
 */
export function normalizeImages(
  images: Uint8Array,
  start = 0,
  count = images.length / PIXELS_PER_IMAGE - start,
  table: NormalizeTable = createNormalizeTable(),
): Float32Array {
  const out = new Float32Array(count * PIXELS_PER_IMAGE);
  for (let i = 0; i < count; i++) writeImage(images, start + i, table, out, i * PIXELS_PER_IMAGE);
  return out;
}
