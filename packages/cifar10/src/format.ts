import { Cifar10FormatError } from './errors.js';

// The binary layout of the official archive. Nothing here touches Node, so a browser bundle can import it
// through `@decompose/cifar10/browser`.

/** Side of a CIFAR-10 image in pixels. */
export const IMAGE_SIZE = 32;
/** Colour channels per pixel (RGB). */
export const CHANNELS = 3;
/** Bytes (and values) per image: 32 × 32 × 3. */
export const PIXELS_PER_IMAGE = IMAGE_SIZE * IMAGE_SIZE * CHANNELS;
/** Bytes per record in a binary batch file: 1 label byte, then the R, G and B planes. */
export const RECORD_BYTES = 1 + PIXELS_PER_IMAGE;
/** Number of classes; labels are 0..9. */
export const NUM_CLASSES = 10;

/** The training batch files of the official binary archive, in order. */
export const TRAIN_FILES = [
  'data_batch_1.bin',
  'data_batch_2.bin',
  'data_batch_3.bin',
  'data_batch_4.bin',
  'data_batch_5.bin',
] as const;
/** The test batch file of the official binary archive. */
export const TEST_FILE = 'test_batch.bin';
/** The class-name file of the official binary archive (one name a line). */
export const META_FILE = 'batches.meta.txt';

/** The shape of one image, channels last: `[height, width, channels]`. */
export type ImageShape = readonly [height: number, width: number, channels: number];

/** CIFAR-10's image shape, `[32, 32, 3]`: the shape of an {@link ImageSet} that gives none. */
export const CIFAR10_IMAGE_SHAPE: ImageShape = [IMAGE_SIZE, IMAGE_SIZE, CHANNELS];

/**
 * A set of same-sized images with their labels: CIFAR-10 (its `shape`, `classNames` and normalisation
 * left out, so they are CIFAR-10's) or images of any size read from elsewhere (e.g. an image folder).
 */
export interface ImageSet {
  /** `count × height × width × channels` bytes, NHWC (row-major, channels interleaved), values 0..255. */
  readonly images: Uint8Array;
  /** `count` labels, 0 .. classes - 1. */
  readonly labels: Uint8Array;
  /** Number of images. */
  readonly count: number;
  /** One image's shape; default {@link CIFAR10_IMAGE_SHAPE}. */
  readonly shape?: ImageShape;
  /** The class names, indexed by label; default CIFAR-10's ({@link CIFAR10_CLASS_NAMES}). */
  readonly classNames?: readonly string[];
  /** Per-channel mean that batches of this set are normalised with (pixels in [0, 1]); default CIFAR-10's. */
  readonly mean?: readonly number[];
  /** Per-channel std that batches of this set are normalised with; default CIFAR-10's. */
  readonly std?: readonly number[];
}

/** A set of CIFAR-10 images (32×32×3, labels 0..9) with their labels: an {@link ImageSet} of CIFAR's shape. */
export type Cifar10Images = ImageSet;

/** The shape of one image of `data` (CIFAR-10's when it gives none). */
export function imageShapeOf(data: ImageSet): ImageShape {
  return data.shape ?? CIFAR10_IMAGE_SHAPE;
}

/** Values per image of `data`: height × width × channels. */
export function valuesPerImage(data: ImageSet): number {
  const [height, width, channels] = imageShapeOf(data);
  return height * width * channels;
}

/** The class names of `data` (CIFAR-10's when it gives none). */
export function classNamesOf(data: ImageSet): readonly string[] {
  return data.classNames ?? CIFAR10_CLASS_NAMES;
}

/** The same images with `fields` (shape, class names, normalisation) of `source` carried over. */
export function withFieldsOf(set: Pick<ImageSet, 'images' | 'labels' | 'count'>, source: ImageSet): ImageSet {
  const { shape, classNames, mean, std } = source;
  return {
    ...set,
    ...(shape && { shape }),
    ...(classNames && { classNames }),
    ...(mean && { mean }),
    ...(std && { std }),
  };
}

/** The class names of the official `batches.meta.txt`, indexed by label. */
export const CIFAR10_CLASS_NAMES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
] as const;

/**
 * Converts `count` records of `raw` (label byte + R, G, B planes) into NHWC pixels and labels, writing at
 * image offset `at` of the outputs. One tight loop per record: this runs over 50,000 images.
 */
export function decodeRecords(
  path: string,
  raw: Uint8Array,
  count: number,
  images: Uint8Array,
  labels: Uint8Array,
  at: number,
): void {
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  for (let record = 0; record < count; record++) {
    const source = record * RECORD_BYTES;
    const label = raw[source]!;
    if (label >= NUM_CLASSES) {
      throw new Cifar10FormatError(path, `record ${record} has label byte ${label}, but labels must be 0-9`);
    }
    labels[at + record] = label;
    const red = source + 1;
    const green = red + plane;
    const blue = green + plane;
    let out = (at + record) * PIXELS_PER_IMAGE;
    for (let pixel = 0; pixel < plane; pixel++) {
      images[out] = raw[red + pixel]!;
      images[out + 1] = raw[green + pixel]!;
      images[out + 2] = raw[blue + pixel]!;
      out += CHANNELS;
    }
  }
}

/**
 * Decodes the records of one binary batch held in memory (e.g. fetched by a web page) into NHWC pixels.
 *
 * @param source - names the data in error messages (a file name or URL).
 * @param limit - decode at most this many records.
 * @throws Cifar10FormatError if the data is empty, not a whole number of 3073-byte records, or holds a label above 9.
 */
export function decodeBatch(
  bytes: Uint8Array,
  { source = 'batch', limit = Number.POSITIVE_INFINITY }: { source?: string; limit?: number } = {},
): Cifar10Images {
  if (bytes.length === 0) throw new Cifar10FormatError(source, 'the data is empty');
  if (bytes.length % RECORD_BYTES !== 0) {
    throw new Cifar10FormatError(
      source,
      `its size ${bytes.length} bytes is not a multiple of ${RECORD_BYTES}`,
    );
  }
  const count = Math.min(bytes.length / RECORD_BYTES, Math.max(0, Math.floor(limit)));
  const images = new Uint8Array(count * PIXELS_PER_IMAGE);
  const labels = new Uint8Array(count);
  decodeRecords(source, bytes, count, images, labels, 0);
  return { images, labels, count };
}
