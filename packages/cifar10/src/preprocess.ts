import { CHANNELS, CIFAR10_IMAGE_SHAPE, type ImageSet, type ImageShape, imageShapeOf } from './format.js';
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

/**
 * Builds the table mapping every byte value of every channel to its normalised float.
 *
 * @param channels - channels per pixel (default 3): `mean` and `std` give one value per channel.
 * @throws RangeError if `mean` or `std` do not have `channels` values, or a std is not positive.
 */
export function createNormalizeTable(
  mean: readonly number[] = CIFAR10_MEAN,
  std: readonly number[] = CIFAR10_STD,
  channels: number = CHANNELS,
): NormalizeTable {
  if (mean.length !== channels || std.length !== channels || std.some((s) => !(s > 0))) {
    throw new RangeError(
      `mean and std need ${channels} values each and std must be positive; got mean [${mean}], std [${std}].`,
    );
  }
  const table = new Float32Array(channels * 256);
  for (let channel = 0; channel < channels; channel++) {
    for (let value = 0; value < 256; value++) {
      table[channel * 256 + value] = (value / 255 - mean[channel]!) / std[channel]!;
    }
  }
  return table;
}

/** How one image is cropped and flipped; the identity is `{ offsetY: 4, offsetX: 4, flip: false }`. */
export interface CropFlip {
  /** Top row of the crop in the zero-padded image (0..8; for CIFAR, the 32×32 crop of the 40×40 image). */
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
 * Writes image `index` of `images` (NHWC bytes of `shape`, default CIFAR-10's 32×32×3) into `out` at float
 * offset `at`, normalised through `table` (built for `shape`'s channels), cropped and flipped as `cropFlip`
 * says (or unchanged if it is undefined). Padding pixels are black (byte 0) before normalisation, as
 * torchvision pads the image before `Normalize` runs.
 */
export function writeImage(
  images: Uint8Array,
  index: number,
  table: NormalizeTable,
  out: Float32Array,
  at: number,
  cropFlip?: CropFlip,
  shape: ImageShape = CIFAR10_IMAGE_SHAPE,
): void {
  const [height, width, channels] = shape;
  const size = height * width * channels;
  const source = index * size;
  if (cropFlip === undefined) {
    if (channels === 3) {
      for (let i = 0; i < size; i += 3) {
        out[at + i] = table[images[source + i]!]!;
        out[at + i + 1] = table[256 + images[source + i + 1]!]!;
        out[at + i + 2] = table[512 + images[source + i + 2]!]!;
      }
    } else {
      for (let i = 0; i < size; i++) out[at + i] = table[(i % channels) * 256 + images[source + i]!]!;
    }
    return;
  }
  const shiftY = cropFlip.offsetY - CROP_PADDING;
  const shiftX = cropFlip.offsetX - CROP_PADDING;
  let o = at;
  for (let y = 0; y < height; y++) {
    const sy = y + shiftY;
    const rowInside = sy >= 0 && sy < height;
    for (let x = 0; x < width; x++) {
      const sx = (cropFlip.flip ? width - 1 - x : x) + shiftX;
      if (rowInside && sx >= 0 && sx < width) {
        const s = source + (sy * width + sx) * channels;
        for (let c = 0; c < channels; c++) out[o + c] = table[c * 256 + images[s + c]!]!;
      } else {
        for (let c = 0; c < channels; c++) out[o + c] = table[c * 256]!;
      }
      o += channels;
    }
  }
}

/**
 * Normalises (without augmentation) `count` images of `shape` (default CIFAR-10's) starting at image `start`
 * into a new Float32Array (NHWC), e.g. a calibration or evaluation set that fits in memory.
 */
export function normalizeImages(
  images: Uint8Array,
  start = 0,
  count?: number,
  table: NormalizeTable = createNormalizeTable(),
  shape: ImageShape = CIFAR10_IMAGE_SHAPE,
): Float32Array {
  const size = shape[0] * shape[1] * shape[2];
  const n = count ?? images.length / size - start;
  const out = new Float32Array(n * size);
  for (let i = 0; i < n; i++) writeImage(images, start + i, table, out, i * size, undefined, shape);
  return out;
}

/**
 * Normalises every image of `data` with its own shape and normalisation (CIFAR-10's where it gives none):
 * what a calibration or evaluation set that fits in memory needs.
 */
export function normalizeImageSet(data: ImageSet): Float32Array {
  const shape = imageShapeOf(data);
  return normalizeImages(
    data.images,
    0,
    data.count,
    createNormalizeTable(data.mean ?? CIFAR10_MEAN, data.std ?? CIFAR10_STD, shape[2]),
    shape,
  );
}
