import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Cifar10FormatError, Cifar10MetaError, Cifar10MissingFileError } from './errors.js';
import {
  type Cifar10Images,
  decodeRecords,
  META_FILE,
  NUM_CLASSES,
  PIXELS_PER_IMAGE,
  RECORD_BYTES,
  TEST_FILE,
  TRAIN_FILES,
} from './format.js';

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
