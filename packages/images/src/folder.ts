import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { type ImageSet, type ImageShape, splitCalibration } from '@decompose/cifar10';
import { decodeImage } from './decode.js';
import {
  ImageFolderClassesError,
  ImageFolderEmptyError,
  ImageFolderNotFoundError,
  ImageFolderOptionError,
} from './errors.js';
import { resizeBilinearRgb } from './resize.js';

/** Per-channel (R, G, B) mean of ImageNet, pixels in [0, 1]: the default normalisation of an image folder. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** Per-channel (R, G, B) std of ImageNet, pixels in [0, 1] (see {@link IMAGENET_MEAN}). */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** File extensions read as images (any case); other files in a class folder are ignored. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'] as const;

/** Most classes an image folder may hold (labels are bytes). */
export const MAX_CLASSES = 256;

/** Share of each class {@link readImageFolder} holds out as the test split unless told otherwise. */
export const DEFAULT_TEST_FRACTION = 0.2;
/** Seed of that split unless told otherwise. */
export const DEFAULT_SPLIT_SEED = 0;

/** Options of {@link readImageFolder}. */
export interface ImageFolderOptions {
  /** `[height, width]` every image is resized to; default the size of the first image read. */
  readonly size?: readonly [number, number];
  /**
   * Share of each class held out as the test split when the folder has no train/ and test/, in (0, 1)
   * (default {@link DEFAULT_TEST_FRACTION}).
   */
  readonly testFraction?: number;
  /** Seed of that split (default {@link DEFAULT_SPLIT_SEED}). */
  readonly seed?: number;
  /** Per-channel mean the sets are normalised with (default {@link IMAGENET_MEAN}). */
  readonly mean?: readonly number[];
  /** Per-channel std the sets are normalised with (default {@link IMAGENET_STD}). */
  readonly std?: readonly number[];
  /** Called after each image is decoded, with the images done and the total. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** An image folder read into a training and a test set. */
export interface ImageFolder {
  /** The folder read. */
  readonly dir: string;
  /** `split` when the folder has train/ and test/, `single` when the test set was held out of it. */
  readonly layout: 'split' | 'single';
  readonly train: ImageSet;
  readonly test: ImageSet;
  /** The class (subfolder) names, sorted; label `i` is `classNames[i]`. */
  readonly classNames: readonly string[];
  /** The shape every image was resized to, `[height, width, 3]`. */
  readonly shape: ImageShape;
}

const isImageFile = (name: string) =>
  !name.startsWith('.') && (IMAGE_EXTENSIONS as readonly string[]).includes(path.extname(name).toLowerCase());

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function subfolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** The classes of `dir` (sorted subfolders) and each one's image files (sorted). */
async function listClasses(dir: string): Promise<{ classNames: string[]; files: string[][] }> {
  const classNames = await subfolders(dir);
  if (classNames.length === 0) throw new ImageFolderEmptyError(dir, 'holds no class subfolders');
  if (classNames.length > MAX_CLASSES) {
    throw new ImageFolderEmptyError(
      dir,
      `holds ${classNames.length} class subfolders, more than ${MAX_CLASSES}`,
    );
  }
  const files: string[][] = [];
  for (const name of classNames) {
    const entries = await readdir(path.join(dir, name), { withFileTypes: true });
    const images = entries
      .filter((e) => e.isFile() && isImageFile(e.name))
      .map((e) => path.join(dir, name, e.name))
      .sort();
    if (images.length === 0) {
      throw new ImageFolderEmptyError(path.join(dir, name), 'holds no .png, .jpg or .jpeg file');
    }
    files.push(images);
  }
  return { classNames, files };
}

/**
 * How `dir` is laid out as an image folder: `split` when it has train/ and test/ subfolders (used as they are,
 * so `testFraction` and `seed` do not apply), `single` when a subfolder holds a PNG or JPEG file, null when it
 * is neither (or not a folder). Cheap (lists folders, reads no image).
 */
export async function imageFolderLayout(dir: string): Promise<ImageFolder['layout'] | null> {
  if (!(await isDirectory(dir))) return null;
  const folders = await subfolders(dir);
  if (folders.includes('train') && folders.includes('test')) return 'split';
  for (const name of folders) {
    const entries = await readdir(path.join(dir, name));
    if (entries.some(isImageFile)) return 'single';
  }
  return null;
}

/**
 * Whether `dir` is laid out as an image folder (see {@link imageFolderLayout}): for telling it from other
 * layouts.
 */
export async function isImageFolder(dir: string): Promise<boolean> {
  return (await imageFolderLayout(dir)) !== null;
}

function checkOptions(dir: string, options: ImageFolderOptions): void {
  const { size, testFraction = DEFAULT_TEST_FRACTION, mean = IMAGENET_MEAN, std = IMAGENET_STD } = options;
  if (size && !(size.length === 2 && size.every((s) => Number.isInteger(s) && s >= 1 && s <= 4096))) {
    throw new ImageFolderOptionError(
      dir,
      'size',
      `must be [height, width], whole numbers in [1, 4096]; got [${size}]`,
    );
  }
  if (!(testFraction > 0 && testFraction < 1)) {
    throw new ImageFolderOptionError(dir, 'testFraction', `must be in (0, 1); got ${testFraction}`);
  }
  if (mean.length !== 3 || std.length !== 3 || std.some((s) => !(s > 0))) {
    throw new ImageFolderOptionError(
      dir,
      'mean/std',
      `needs 3 values each (R, G, B) and a positive std; got mean [${mean}], std [${std}]`,
    );
  }
}

/**
 * Reads an image folder: `<dir>/<class>/*.png|jpg|jpeg` (a seeded, per-class test split of `testFraction`
 * is held out), or `<dir>/train/<class>/…` and `<dir>/test/<class>/…`. Classes are the subfolders, sorted by
 * name; files are read in sorted order. Every image is decoded (grey becomes RGB, alpha is dropped) and
 * resized bilinearly (half-pixel centres, no anti-aliasing) to `size`, so the sets hold
 * `[height, width, 3]` images, with the class names and the normalisation (`mean`/`std`) the batches of
 * `@decompose/cifar10` then use.
 *
 * @throws ImageFolderNotFoundError, ImageFolderEmptyError (no classes, an empty class), ImageDecodeError
 *   (names the file), ImageFolderClassesError (train/ and test/ with other classes), ImageFolderOptionError.
 */
export async function readImageFolder(dir: string, options: ImageFolderOptions = {}): Promise<ImageFolder> {
  if (!(await isDirectory(dir))) throw new ImageFolderNotFoundError(dir);
  checkOptions(dir, options);
  const {
    testFraction = DEFAULT_TEST_FRACTION,
    seed = DEFAULT_SPLIT_SEED,
    mean = IMAGENET_MEAN,
    std = IMAGENET_STD,
  } = options;
  const top = await subfolders(dir);
  const split = top.includes('train') && top.includes('test');
  const parts = split
    ? [await listClasses(path.join(dir, 'train')), await listClasses(path.join(dir, 'test'))]
    : [await listClasses(dir)];
  const classNames = parts[0]!.classNames;
  if (split && parts[1]!.classNames.join('\0') !== classNames.join('\0')) {
    throw new ImageFolderClassesError(dir, classNames, parts[1]!.classNames);
  }
  const total = parts.reduce((n, p) => n + p.files.reduce((m, f) => m + f.length, 0), 0);
  let size = options.size;
  let done = 0;
  const read = async ({ files }: { files: string[][] }): Promise<ImageSet> => {
    const count = files.reduce((n, f) => n + f.length, 0);
    let images: Uint8Array | undefined;
    const labels = new Uint8Array(count);
    let i = 0;
    for (const [label, classFiles] of files.entries()) {
      for (const file of classFiles) {
        const image = decodeImage(await readFile(file), file);
        size ??= [image.height, image.width];
        const [height, width] = size;
        images ??= new Uint8Array(count * height * width * 3);
        resizeBilinearRgb(
          image.data,
          image.width,
          image.height,
          height,
          width,
          images,
          i * height * width * 3,
        );
        labels[i++] = label;
        options.onProgress?.(++done, total);
      }
    }
    const [height, width] = size!;
    return { images: images!, labels, count, shape: [height, width, 3], classNames, mean, std };
  };
  const first = await read(parts[0]!);
  let train = first;
  let test: ImageSet;
  if (split) test = await read(parts[1]!);
  else {
    if (first.count < 2) {
      throw new ImageFolderEmptyError(
        dir,
        'holds one image: a test split needs at least two (or use train/ and test/)',
      );
    }
    const held = splitCalibration(first, { fraction: testFraction, seed });
    train = held.train;
    test = held.calibration;
  }
  return { dir, layout: split ? 'split' : 'single', train, test, classNames, shape: first.shape! };
}
