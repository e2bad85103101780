import { describe, expect, it } from 'vitest';
import { PIXELS_PER_IMAGE } from './format.js';
import {
  CIFAR10_MEAN,
  CIFAR10_STD,
  type CropFlip,
  createNormalizeTable,
  drawCropFlip,
  normalizeImages,
  writeImage,
} from './preprocess.js';
import { readCifar10 } from './reader.js';
import { Rng } from './rng.js';
import { SUBSET_DIR } from './test-fixtures.js';

/** One image whose pixel (y, x) is R = 1 + y, G = 100 + x, B = 200 + (y + x) % 50: every position is tellable. */
function positionImage(): Uint8Array {
  const image = new Uint8Array(PIXELS_PER_IMAGE);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) image.set([1 + y, 100 + x, 200 + ((y + x) % 50)], (y * 32 + x) * 3);
  }
  return image;
}

/** Reference crop/flip written the long way: pad to 40×40 with zeros, cut out the crop, then mirror it. */
function referenceCropFlip(image: Uint8Array, { offsetY, offsetX, flip }: CropFlip): number[] {
  const padded = new Uint8Array(40 * 40 * 3);
  for (let y = 0; y < 32; y++) padded.set(image.subarray(y * 96, (y + 1) * 96), ((y + 4) * 40 + 4) * 3);
  const crop: number[][] = [];
  for (let y = 0; y < 32; y++) {
    const row: number[][] = [];
    for (let x = 0; x < 32; x++)
      row.push([
        ...padded.subarray(
          ((y + offsetY) * 40 + x + offsetX) * 3,
          ((y + offsetY) * 40 + x + offsetX) * 3 + 3,
        ),
      ]);
    if (flip) row.reverse();
    crop.push(row.flat());
  }
  return crop.flat();
}

// mean 0 and std 1/255 make normalisation the identity on byte values, so outputs read as raw pixels.
const identity = createNormalizeTable([0, 0, 0], [1 / 255, 1 / 255, 1 / 255]);

describe('normalisation', () => {
  it('maps bytes to (v / 255 - mean) / std per channel', () => {
    const table = createNormalizeTable();
    expect(table[0]).toBeCloseTo(-CIFAR10_MEAN[0] / CIFAR10_STD[0], 5);
    expect(table[256 + 255]).toBeCloseTo((1 - CIFAR10_MEAN[1]) / CIFAR10_STD[1], 5);
    expect(table[512 + 128]).toBeCloseTo((128 / 255 - CIFAR10_MEAN[2]) / CIFAR10_STD[2], 5);
    expect(() => createNormalizeTable([0, 0], [1, 1])).toThrow(RangeError);
    expect(() => createNormalizeTable([0, 0, 0], [1, 0, 1])).toThrow(RangeError);
  });

  it('brings the real training images to about zero mean and unit std per channel', async () => {
    const { train } = await readCifar10(SUBSET_DIR);
    const values = normalizeImages(train.images);
    expect(values.length).toBe(train.images.length);
    for (let c = 0; c < 3; c++) {
      let sum = 0;
      let squares = 0;
      for (let i = c; i < values.length; i += 3) {
        sum += values[i]!;
        squares += values[i]! * values[i]!;
      }
      const n = values.length / 3;
      const mean = sum / n;
      expect(Math.abs(mean)).toBeLessThan(0.05);
      expect(Math.sqrt(squares / n - mean * mean)).toBeCloseTo(1, 1);
    }
  });
});

describe('crop and flip', () => {
  const image = positionImage();
  const cases: CropFlip[] = [
    { offsetY: 4, offsetX: 4, flip: false },
    { offsetY: 4, offsetX: 4, flip: true },
    { offsetY: 0, offsetX: 0, flip: false },
    { offsetY: 8, offsetX: 8, flip: true },
    { offsetY: 1, offsetX: 7, flip: true },
    { offsetY: 6, offsetX: 2, flip: false },
  ];

  it.each(cases)('matches pad-then-crop-then-flip for %o', (cropFlip) => {
    const out = new Float32Array(PIXELS_PER_IMAGE);
    writeImage(image, 0, identity, out, 0, cropFlip);
    expect(Array.from(out, Math.round)).toEqual(referenceCropFlip(image, cropFlip));
  });

  it('is the identity at offset (4, 4) without flip, and mirrors columns with flip', () => {
    const out = new Float32Array(PIXELS_PER_IMAGE);
    writeImage(image, 0, identity, out, 0, { offsetY: 4, offsetX: 4, flip: false });
    expect(Array.from(out, Math.round)).toEqual([...image]);
    writeImage(image, 0, identity, out, 0, { offsetY: 4, offsetX: 4, flip: true });
    // Output column 0 is source column 31: G (= 100 + x) tells the column.
    expect(Math.round(out[1]!)).toBe(131);
    // Offset (0, 0) shifts the image down-right by 4: the top-left 4 rows/columns are black padding.
    writeImage(image, 0, identity, out, 0, { offsetY: 0, offsetX: 0, flip: false });
    expect(Array.from(out.subarray(0, 12), Math.round)).toEqual(new Array(12).fill(0));
    expect(Array.from(out.subarray((4 * 32 + 4) * 3, (4 * 32 + 4) * 3 + 3), Math.round)).toEqual([
      1, 100, 200,
    ]);
  });

  it('draws offsets in 0..8 and both flips, deterministically by seed', () => {
    const draws = (seed: number) => {
      const rng = Rng.fromSeed(seed);
      return Array.from({ length: 500 }, () => drawCropFlip(rng));
    };
    const first = draws(9);
    expect(draws(9)).toEqual(first);
    expect(draws(10)).not.toEqual(first);
    expect(new Set(first.map((d) => d.offsetY))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8]));
    expect(new Set(first.map((d) => d.offsetX)).size).toBe(9);
    expect(new Set(first.map((d) => d.flip))).toEqual(new Set([true, false]));
  });
});
