import { existsSync } from 'node:fs';
import path from 'node:path';
import {
  CIFAR10_MEAN,
  CIFAR10_STD,
  type Cifar10Dataset,
  type Cifar10Images,
  downloadCifar10,
  findBundledSubset,
  type ImageSet,
  readCifar10,
  resolveCifar10Dir,
  selectImages,
  TEST_FILE,
  TRAIN_FILES,
} from '@decompose/cifar10';
import {
  DEFAULT_SPLIT_SEED,
  DEFAULT_TEST_FRACTION,
  IMAGENET_MEAN,
  IMAGENET_STD,
  imageFolderLayout,
  readImageFolder,
} from '@decompose/images';
import { ConfigError, DataLayoutError } from './errors.js';
import type { Console } from './progress.js';

/** Where a command's images come from (the data fields of every command's config). */
export interface DataSource {
  data?: string;
  download: boolean;
  cacheDir: string;
  limitTrain?: number;
  limitTest?: number;
  /** `HxW` an image folder is resized to (default the model's input size, else the first image's). */
  inputSize?: string;
  /** `mean,std` or six numbers (R, G, B means, then stds), pixels in [0, 1]. */
  normalize?: string;
  /** Share of each class an image folder without train/ and test/ holds out as the test split. */
  testFraction?: number;
  /** Seed of that split. */
  splitSeed?: number;
}

/** How the test images were split off an image folder without train/ and test/. */
export interface TestSplit {
  /** Share of each class held out. */
  fraction: number;
  seed: number;
}

/** What the command knows of the model before the data is read. */
export interface DataHints {
  /** The model's input shape without the batch dimension, e.g. `[64, 64, 3]`, when known. */
  modelInput?: readonly (number | null)[];
}

/** The images a command works on, and the folder they were read from. */
export interface LoadedData {
  dir: string;
  /** `cifar10` for the binary layout, `images` for an image folder. */
  kind: 'cifar10' | 'images';
  /** Names the data in a model/data mismatch, e.g. `CIFAR-10` or `image folder /data/pets`. */
  name: string;
  train: Cifar10Images;
  test: Cifar10Images;
  classNames: readonly string[];
  /** The split of the test images off the training images; null when the data came with its own test set. */
  testSplit: TestSplit | null;
}

/** `a seeded 20% of each class (seed 0)`: a {@link TestSplit} in words, for logs and reports. */
export function describeTestSplit(split: TestSplit): string {
  return `a seeded ${+(100 * split.fraction).toFixed(2)}% of each class (seed ${split.seed})`;
}

/** Where a run's images came from, as its summary or results JSON records it. */
export interface DataRecord {
  dir: string;
  kind: LoadedData['kind'];
  /** Images trained on and tested on. */
  train: number;
  test: number;
  /** See {@link LoadedData.testSplit}. */
  testSplit: TestSplit | null;
}

/** The {@link DataRecord} of `data`; `train` defaults to its training images (less a hold-out, say). */
export function dataRecord(data: LoadedData, train: number = data.train.count): DataRecord {
  return { dir: data.dir, kind: data.kind, train, test: data.test.count, testSplit: data.testSplit };
}

/** Largest side `--input-size` accepts. */
export const MAX_INPUT_SIDE = 4096;

/** `64x64` as `[64, 64]`, or null when it is not `HxW` with whole sides in [1, {@link MAX_INPUT_SIDE}]. */
export function parseInputSize(text: string): [number, number] | null {
  const match = /^\s*(\d+)\s*[x×]\s*(\d+)\s*$/i.exec(text);
  if (!match) return null;
  const size: [number, number] = [Number(match[1]), Number(match[2])];
  return size.every((s) => s >= 1 && s <= MAX_INPUT_SIDE) ? size : null;
}

/**
 * `mean,std` (the same for each channel) or `r,g,b,r,g,b` (three means, then three stds) as per-channel
 * arrays, or null when malformed or out of range (means in [0, 1], stds in (0, 10]).
 */
export function parseNormalize(text: string): { mean: number[]; std: number[] } | null {
  const values = text.split(',').map((v) => (v.trim() === '' ? Number.NaN : Number(v)));
  if (values.length !== 2 && values.length !== 6) return null;
  const mean = values.length === 2 ? [values[0]!, values[0]!, values[0]!] : values.slice(0, 3);
  const std = values.length === 2 ? [values[1]!, values[1]!, values[1]!] : values.slice(3);
  if (!mean.every((m) => m >= 0 && m <= 1) || !std.every((s) => s > 0 && s <= 10)) return null;
  return { mean, std };
}

/** The CIFAR-10 binary layout: at least one of its files, or its archive folder, is there. */
function looksLikeCifar10(dir: string): boolean {
  return [...TRAIN_FILES, TEST_FILE, 'cifar-10-batches-bin'].some((file) => existsSync(path.join(dir, file)));
}

/** `limit` images spread evenly over `images` (an image folder's sets are in class order). */
function spreadImages(images: ImageSet, limit: number | undefined): ImageSet {
  if (limit === undefined || limit >= images.count) return images;
  return selectImages(
    images,
    Uint32Array.from({ length: limit }, (_, i) => Math.floor((i * images.count) / limit)),
  );
}

function firstImages(images: Cifar10Images, limit: number | undefined): Cifar10Images {
  if (limit === undefined || limit >= images.count) return images;
  return selectImages(
    images,
    Uint32Array.from({ length: limit }, (_, i) => i),
  );
}

/** A fixed `[height, width]` of a model input `[h, w, c]`, if it has one. */
function modelSize(modelInput: readonly (number | null)[] | undefined): [number, number] | undefined {
  if (modelInput?.length !== 3) return undefined;
  const [h, w] = modelInput;
  return typeof h === 'number' && typeof w === 'number' ? [h, w] : undefined;
}

/** The split flags given (`--test-fraction`, `--split-seed`), for refusing them where they do not apply. */
function splitFlags(source: DataSource): string[] {
  return [
    ...(source.testFraction === undefined ? [] : [`--test-fraction ${source.testFraction}`]),
    ...(source.splitSeed === undefined ? [] : [`--split-seed ${source.splitSeed}`]),
  ];
}

async function loadImageFolder(
  dir: string,
  layout: 'split' | 'single',
  source: DataSource,
  normalize: { mean: number[]; std: number[] } | null,
  hints: DataHints,
  out: Console,
): Promise<LoadedData> {
  const flags = splitFlags(source);
  // Silently ignoring them would leave the user believing the test set is the split they asked for.
  if (layout === 'split' && flags.length > 0) {
    throw new ConfigError([
      `${flags.join(', ')}: ${dir} has train/ and test/ subfolders, which are used as they are; drop ` +
        `${flags.length === 1 ? 'the flag' : 'the flags'} (testFraction, splitSeed), or point --data at a ` +
        'folder of class subfolders only to have its test images split off',
    ]);
  }
  const testSplit =
    layout === 'single'
      ? {
          fraction: source.testFraction ?? DEFAULT_TEST_FRACTION,
          seed: source.splitSeed ?? DEFAULT_SPLIT_SEED,
        }
      : null;
  const size =
    source.inputSize !== undefined ? parseInputSize(source.inputSize)! : modelSize(hints.modelInput);
  const bar = out.progress('read images', 100);
  const folder = await readImageFolder(dir, {
    size,
    mean: normalize?.mean ?? IMAGENET_MEAN,
    std: normalize?.std ?? IMAGENET_STD,
    ...(testSplit === null ? {} : { testFraction: testSplit.fraction, seed: testSplit.seed }),
    onProgress: (done, total) => bar.update(Math.floor((100 * done) / total)),
  });
  bar.stop();
  const train = spreadImages(folder.train, source.limitTrain);
  const test = spreadImages(folder.test, source.limitTest);
  const [height, width] = folder.shape;
  const split = testSplit === null ? '' : `, test = ${describeTestSplit(testSplit)}`;
  out.log(
    `data: image folder ${dir} (${folder.classNames.length} classes, ${height}×${width}, ` +
      `${train.count} train, ${test.count} test images${split})`,
  );
  return {
    dir,
    kind: 'images',
    name: `image folder ${dir}`,
    train,
    test,
    classNames: folder.classNames,
    testSplit,
  };
}

/**
 * Reads `--data` (a CIFAR-10 binary folder or an image folder, told apart by their layout), else the full
 * CIFAR-10 set downloaded into the cache (`--download`), else the bundled subset; `limitTrain`/`limitTest` keep
 * only the first images of each split (spread over the classes for an image folder). An image folder is resized
 * to `--input-size`, else to the model's input size (`hints`), and normalised with `--normalize` (default
 * ImageNet's); CIFAR-10 with `--normalize` or its own statistics. A folder of class subfolders only has its
 * test images split off per class (`--test-fraction`, default 20 %, `--split-seed`, default 0).
 *
 * @throws DataLayoutError if `--data` is neither layout; ConfigError for `--input-size` with CIFAR-10, and for
 *   `--test-fraction` or `--split-seed` with data that has its own test set (CIFAR-10, train/ and test/).
 */
export async function loadData(source: DataSource, out: Console, hints: DataHints = {}): Promise<LoadedData> {
  const normalize = source.normalize === undefined ? null : parseNormalize(source.normalize);
  let dir: string;
  if (source.data !== undefined) {
    const resolved = path.resolve(source.data);
    if (!looksLikeCifar10(resolved)) {
      const layout = await imageFolderLayout(resolved);
      if (layout !== null) return loadImageFolder(resolved, layout, source, normalize, hints, out);
      if (existsSync(resolved)) throw new DataLayoutError(resolved);
    }
    dir = await resolveCifar10Dir({ dataDir: source.data });
  } else if (source.download) {
    const bar = out.progress('download CIFAR-10', 100);
    dir = await downloadCifar10({
      cacheDir: source.cacheDir,
      onProgress: (p) =>
        bar.update(p.totalBytes ? Math.floor((100 * p.receivedBytes) / p.totalBytes) : 0, p.phase),
    });
    bar.stop();
  } else {
    dir = findBundledSubset();
  }
  if (source.inputSize !== undefined && source.inputSize.replace(/\s/g, '').toLowerCase() !== '32x32') {
    throw new ConfigError([
      `--input-size: got ${JSON.stringify(source.inputSize)}; CIFAR-10 (${dir}) images are 32x32 and are not ` +
        'resized: drop --input-size, or pass an image folder as --data',
    ]);
  }
  const flags = splitFlags(source);
  if (flags.length > 0) {
    throw new ConfigError([
      `${flags.join(', ')}: CIFAR-10 (${dir}) has its own test set; they split an image folder of class ` +
        'subfolders only: drop them, or pass such a folder as --data',
    ]);
  }
  const dataset: Cifar10Dataset = await readCifar10(dir);
  const normalized = (set: Cifar10Images): Cifar10Images =>
    normalize &&
    (normalize.mean.join() !== CIFAR10_MEAN.join() || normalize.std.join() !== CIFAR10_STD.join())
      ? { ...set, mean: normalize.mean, std: normalize.std }
      : set;
  const train = normalized(firstImages(dataset.train, source.limitTrain));
  const test = normalized(firstImages(dataset.test, source.limitTest));
  out.log(`data: ${dir} (${train.count} train, ${test.count} test images)`);
  return {
    dir,
    kind: 'cifar10',
    name: 'CIFAR-10',
    train,
    test,
    classNames: dataset.classNames,
    testSplit: null,
  };
}
