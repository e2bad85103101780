import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Cifar10FormatError, Cifar10MetaError, Cifar10MissingFileError } from './errors.js';

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

/** A set of images with their labels. */
export interface Cifar10Images {
  /** `count × 32 × 32 × 3` bytes, NHWC (row-major, RGB interleaved), values 0..255. */
  readonly images: Uint8Array;
  /** `count` labels, 0..9. */
  readonly labels: Uint8Array;
  /** Number of images. */
  readonly count: number;
}

/** The whole data set as read from a folder. */
export interface Cifar10Dataset {
  /** All training batches, concatenated in file order. */
  readonly train: Cifar10Images;
  /** The test batch. */
  readonly test: Cifar10Images;
  /** The 10 class names, indexed by label. */
  readonly classNames: readonly string[];
}

/** Checks one batch file's presence and size and returns its record count, without reading it. */
async function countRecords(path: string): Promise<number> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Cifar10MissingFileError(path, 'file');
    size = info.size;
  } catch (error) {
    if (error instanceof Cifar10MissingFileError) throw error;
    throw new Cifar10MissingFileError(path, 'file');
  }
  if (size === 0) throw new Cifar10FormatError(path, 'the file is empty');
  if (size % RECORD_BYTES !== 0) {
    throw new Cifar10FormatError(
      path,
      `its size ${size} bytes is not a multiple of ${RECORD_BYTES} (${Math.floor(size / RECORD_BYTES)} records ` +
        `and ${size % RECORD_BYTES} stray bytes; the file is probably truncated)`,
    );
  }
  return size / RECORD_BYTES;
}

/**
 * Converts `count` records of `raw` (label byte + R, G, B planes) into NHWC pixels and labels, writing at
 * image offset `at` of the outputs. One tight loop per record: this runs over 50,000 images.
 */
function decodeRecords(
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
 * Reads CIFAR-10 binary batch files (any record count) into one NHWC image array.
 *
 * @param paths - batch files, read and concatenated in this order.
 * @throws Cifar10MissingFileError if a file is missing; Cifar10FormatError if a file is empty, not a whole
 *   number of 3073-byte records, or holds a label above 9.
 */
export async function readCifar10Batches(paths: readonly string[]): Promise<Cifar10Images> {
  const counts = await Promise.all(paths.map(countRecords));
  const count = counts.reduce((sum, n) => sum + n, 0);
  const images = new Uint8Array(count * PIXELS_PER_IMAGE);
  const labels = new Uint8Array(count);
  let at = 0;
  // Files are read one at a time so at most one raw batch (30 MB for an official file) is held at once.
  for (const [index, path] of paths.entries()) {
    const raw = await readFile(path);
    const records = counts[index]!;
    if (raw.length !== records * RECORD_BYTES) {
      throw new Cifar10FormatError(path, 'the file changed size while it was being read');
    }
    decodeRecords(path, raw, records, images, labels, at);
    at += records;
  }
  return { images, labels, count };
}

/**
 * Reads the class names from `batches.meta.txt` (one a line; blank lines ignored).
 *
 * @throws Cifar10MissingFileError if the file is missing; Cifar10MetaError if it does not hold 10 names.
 */
export async function readCifar10ClassNames(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new Cifar10MissingFileError(path, 'file');
  }
  const names = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length !== NUM_CLASSES) throw new Cifar10MetaError(path, names.length);
  return names;
}

/**
 * Reads a folder in the official CIFAR-10 binary layout (`data_batch_1..5.bin`, `test_batch.bin`,
 * `batches.meta.txt`): the full set (50,000 + 10,000) or any subset with the same layout.
 *
 * @param dir - the folder (e.g. the archive's `cifar-10-batches-bin`, or the bundled subset).
 * @throws Cifar10MissingFileError naming the missing folder or file; Cifar10FormatError naming a bad file.
 */
export async function readCifar10(dir: string): Promise<Cifar10Dataset> {
  const isDir = await stat(dir).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!isDir) throw new Cifar10MissingFileError(dir, 'folder');
  const [train, test, classNames] = await Promise.all([
    readCifar10Batches(TRAIN_FILES.map((file) => join(dir, file))),
    readCifar10Batches([join(dir, TEST_FILE)]),
    readCifar10ClassNames(join(dir, META_FILE)),
  ]);
  return { train, test, classNames };
}

/**
 * Checks that `dir` holds every file of the binary layout with a plausible size, without reading pixels.
 *
 * @throws the same errors as {@link readCifar10} for missing, empty or truncated files.
 */
export async function checkCifar10Dir(dir: string): Promise<void> {
  const isDir = await stat(dir).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!isDir) throw new Cifar10MissingFileError(dir, 'folder');
  await Promise.all([...TRAIN_FILES, TEST_FILE].map((file) => countRecords(join(dir, file))));
  await readCifar10ClassNames(join(dir, META_FILE));
}
