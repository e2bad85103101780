import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from './decode.js';
import {
  ImageDecodeError,
  ImageFolderClassesError,
  ImageFolderEmptyError,
  ImageFolderNotFoundError,
  ImageFolderOptionError,
} from './errors.js';
import { IMAGENET_MEAN, imageFolderLayout, isImageFolder, readImageFolder } from './folder.js';
import { resizeBilinearRgb } from './resize.js';
import { writeSyntheticImageFolder } from './synthetic.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'decompose-images-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

const fresh = async (name: string) => {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  return dir;
};

/** A PNG of `width × height` with the given colour type (0 grey, 2 RGB, 4 grey + alpha, 6 RGBA). */
function png(width: number, height: number, rgba: number[], colorType: 0 | 2 | 4 | 6): Buffer {
  const image = new PNG({ width, height, colorType, inputColorType: 6, inputHasAlpha: true } as never);
  for (let p = 0; p < width * height; p++) image.data.set(rgba, p * 4);
  return PNG.sync.write(image, { colorType, inputColorType: 6, inputHasAlpha: true } as never);
}

describe('readImageFolder', () => {
  it('reads class subfolders of PNG and JPEG files, resized, with a seeded per-class test split', async () => {
    const dir = await fresh('single');
    await writeSyntheticImageFolder(dir, { classes: ['dog', 'cat', 'bird'], perClass: 5, size: [20, 24] });
    await writeFile(path.join(dir, 'cat', 'notes.txt'), 'not an image');
    expect(await isImageFolder(dir)).toBe(true);
    expect(await imageFolderLayout(dir)).toBe('single');
    const folder = await readImageFolder(dir, { size: [8, 12], testFraction: 0.2, seed: 3 });
    expect(folder.layout).toBe('single');
    expect(folder.classNames).toEqual(['bird', 'cat', 'dog']);
    expect(folder.shape).toEqual([8, 12, 3]);
    expect(folder.train.count + folder.test.count).toBe(15);
    expect(folder.test.count).toBe(3);
    expect([...folder.test.labels].sort()).toEqual([0, 1, 2]);
    expect(folder.train.images.length).toBe(12 * 8 * 12 * 3);
    expect(folder.train.shape).toEqual([8, 12, 3]);
    expect(folder.test.classNames).toEqual(['bird', 'cat', 'dog']);
    expect(folder.train.mean).toEqual(IMAGENET_MEAN);
    // Class k is brightest in channel k mod 3: bird (written as label 2) in blue.
    const firstBird = folder.train.images.subarray(0, 3);
    expect(firstBird[2]).toBeGreaterThan(firstBird[0]! + 60);
    const again = await readImageFolder(dir, { size: [8, 12], testFraction: 0.2, seed: 3 });
    expect(again.test.images).toEqual(folder.test.images);
    // The split follows testFraction and seed: 2 of each class's 5 at 0.4, other images with another seed.
    const wider = await readImageFolder(dir, { size: [8, 12], testFraction: 0.4, seed: 3 });
    expect([wider.train.count, wider.test.count]).toEqual([9, 6]);
    const reseeded = await readImageFolder(dir, { size: [8, 12], testFraction: 0.2, seed: 4 });
    expect(reseeded.test.images).not.toEqual(folder.test.images);
  });

  it('defaults the size to the first image and reads train/ and test/ as the splits', async () => {
    const dir = await fresh('split');
    await writeSyntheticImageFolder(dir, { perClass: 2, size: [10, 6], split: true });
    expect(await imageFolderLayout(dir)).toBe('split');
    const folder = await readImageFolder(dir);
    expect(folder.layout).toBe('split');
    expect(folder.shape).toEqual([10, 6, 3]);
    expect([folder.train.count, folder.test.count]).toEqual([4, 4]);
    expect(Array.from(folder.test.labels)).toEqual([0, 0, 1, 1]);
  });

  it('makes grey images RGB and drops alpha', async () => {
    const dir = await fresh('grey');
    await mkdir(path.join(dir, 'x'));
    await writeFile(path.join(dir, 'x', 'grey.png'), png(3, 2, [90, 90, 90, 255], 0));
    await writeFile(path.join(dir, 'x', 'rgba.PNG'), png(3, 2, [10, 20, 30, 7], 6));
    const { train, test } = await readImageFolder(dir, { size: [2, 3], testFraction: 0.5 });
    const pixels = [train, test]
      .map((set) => Array.from(set.images.subarray(0, 3)))
      .sort((a, b) => a[0]! - b[0]!);
    expect(pixels).toEqual([
      [10, 20, 30],
      [90, 90, 90],
    ]);
  });

  it('refuses a missing, empty or class-less folder, an empty class and mismatched splits', async () => {
    await expect(readImageFolder(path.join(root, 'nowhere'))).rejects.toThrow(ImageFolderNotFoundError);
    const empty = await fresh('empty');
    expect(await isImageFolder(empty)).toBe(false);
    expect(await imageFolderLayout(empty)).toBeNull();
    expect(await imageFolderLayout(path.join(root, 'nowhere'))).toBeNull();
    await expect(readImageFolder(empty)).rejects.toThrow(ImageFolderEmptyError);
    await expect(readImageFolder(empty)).rejects.toThrow(/holds no class subfolders/);
    const emptyClass = await fresh('empty-class');
    await writeSyntheticImageFolder(emptyClass, { classes: ['a'], perClass: 2 });
    await mkdir(path.join(emptyClass, 'b'));
    await expect(readImageFolder(emptyClass)).rejects.toThrow(
      /empty-class.b holds no \.png, \.jpg or \.jpeg file/,
    );
    const splits = await fresh('mismatch');
    await writeSyntheticImageFolder(path.join(splits, 'train'), { classes: ['a', 'b'], perClass: 1 });
    await writeSyntheticImageFolder(path.join(splits, 'test'), { classes: ['a', 'c'], perClass: 1 });
    await expect(readImageFolder(splits)).rejects.toThrow(ImageFolderClassesError);
    await expect(readImageFolder(splits, { size: [0, 3] })).rejects.toThrow(ImageFolderOptionError);
  });

  it('names a file it cannot decode', async () => {
    const dir = await fresh('broken');
    await writeSyntheticImageFolder(dir, { classes: ['a'], perClass: 2 });
    const bad = path.join(dir, 'a', 'z-broken.jpg');
    await writeFile(bad, 'plain text, not a JPEG');
    await expect(readImageFolder(dir)).rejects.toThrow(ImageDecodeError);
    await expect(readImageFolder(dir)).rejects.toThrow(
      `Cannot decode ${bad}: it is neither a PNG nor a JPEG`,
    );
    const truncated = png(4, 4, [1, 2, 3, 255], 2).subarray(0, 40);
    expect(() => decodeImage(truncated, 't.png')).toThrow(/Cannot decode t\.png: the data is damaged/);
  });
});

describe('resizeBilinearRgb', () => {
  it('copies an image of the target size and interpolates between pixel centres', () => {
    const rgba = Uint8Array.from([0, 0, 0, 255, 100, 200, 40, 255]);
    const same = new Uint8Array(6);
    resizeBilinearRgb(rgba, 2, 1, 1, 2, same, 0);
    expect(Array.from(same)).toEqual([0, 0, 0, 100, 200, 40]);
    const wide = new Uint8Array(12);
    resizeBilinearRgb(rgba, 2, 1, 1, 4, wide, 0);
    // Centres at x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped) of the source.
    expect(Array.from(wide)).toEqual([0, 0, 0, 25, 50, 10, 75, 150, 30, 100, 200, 40]);
  });
});
