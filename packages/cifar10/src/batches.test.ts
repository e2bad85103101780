import { beforeAll, describe, expect, it } from 'vitest';
import { type Batch, createBatchStream } from './batches.js';
import { type Cifar10Images, type ImageSet, PIXELS_PER_IMAGE } from './format.js';
import { normalizeImageSet, normalizeImages, writeImage } from './preprocess.js';
import { readCifar10 } from './reader.js';
import { selectImages } from './split.js';
import { SUBSET_DIR } from './test-fixtures.js';

/** Whether two float arrays hold the same bits (vitest's deep equality is slow on a million elements). */
function sameFloats(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** One image of an NHWC float array, as a string key. */
function imageKey(values: Float32Array, i: number): string {
  return Buffer.from(
    values.buffer,
    values.byteOffset + i * PIXELS_PER_IMAGE * 4,
    PIXELS_PER_IMAGE * 4,
  ).toString('base64');
}

/** Copies a stream's batches (their buffers are reused) so epochs can be compared. */
function collect(batches: Iterable<Batch>): { images: Float32Array; labels: number[]; counts: number[] } {
  const images: Float32Array[] = [];
  const labels: number[] = [];
  const counts: number[] = [];
  for (const batch of batches) {
    images.push(batch.images.slice());
    labels.push(...batch.labels);
    counts.push(batch.count);
  }
  const all = new Float32Array(images.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const part of images) {
    all.set(part, at);
    at += part.length;
  }
  return { images: all, labels, counts };
}

describe('createBatchStream', () => {
  let test: Cifar10Images;
  // 300 real images keep the tests quick while still giving several batches and a partial last one.
  let small: Cifar10Images;
  beforeAll(async () => {
    test = (await readCifar10(SUBSET_DIR)).test;
    small = {
      images: test.images.subarray(0, 300 * PIXELS_PER_IMAGE),
      labels: test.labels.subarray(0, 300),
      count: 300,
    };
  });

  it('without shuffle or augmentation, yields the normalised set in order, last batch partial', () => {
    const stream = createBatchStream(small, { batchSize: 64, shuffle: false });
    expect(stream.batchesPerEpoch).toBe(5);
    const epoch = collect(stream.epoch(0));
    expect(epoch.counts).toEqual([64, 64, 64, 64, 44]);
    expect(epoch.labels).toEqual([...small.labels]);
    expect(sameFloats(epoch.images, normalizeImages(small.images))).toBe(true);
  });

  it('drops the partial last batch when asked', () => {
    const stream = createBatchStream(small, { batchSize: 64, dropLast: true });
    expect(stream.batchesPerEpoch).toBe(4);
    const batches = [...stream.epoch(0)].map((b) => [b.count, b.images.length, b.labels.length]);
    expect(batches).toEqual(new Array(4).fill([64, 64 * PIXELS_PER_IMAGE, 64]));
  });

  it('shuffles each epoch differently, keeping every image exactly once with its label', () => {
    const stream = createBatchStream(small, { batchSize: 50, seed: 3 });
    const first = collect(stream.epoch(0));
    const second = collect(stream.epoch(1));
    expect(first.labels).not.toEqual(second.labels);
    expect([...first.labels].sort()).toEqual([...small.labels].sort());
    // Each output image must be one of the inputs, carrying its own label.
    const normalised = normalizeImages(small.images);
    const labelByImage = new Map(
      Array.from({ length: 300 }, (_, i) => [imageKey(normalised, i), small.labels[i]]),
    );
    for (let i = 0; i < 300; i++) expect(labelByImage.get(imageKey(first.images, i))).toBe(first.labels[i]);
  });

  it('is deterministic by seed, with or without augmentation', () => {
    const options = { batchSize: 128, augment: true };
    const a = collect(createBatchStream(small, { ...options, seed: 11 }).epoch(2));
    const b = collect(createBatchStream(small, { ...options, seed: 11 }).epoch(2));
    const c = collect(createBatchStream(small, { ...options, seed: 12 }).epoch(2));
    expect(sameFloats(a.images, b.images)).toBe(true);
    expect(a.labels).toEqual(b.labels);
    expect(sameFloats(a.images, c.images)).toBe(false);
    // Augmentation changes pixels but not which images are drawn.
    const plain = collect(createBatchStream(small, { ...options, augment: false, seed: 11 }).epoch(2));
    expect(plain.labels).toEqual(a.labels);
    expect(sameFloats(plain.images, a.images)).toBe(false);
  });

  it('reproduces an uninterrupted run when resumed at any epoch or batch', () => {
    const options = { batchSize: 64, augment: true, seed: 5 };
    const uninterrupted = createBatchStream(small, options);
    const runs = [0, 1, 2].map((e) => collect(uninterrupted.epoch(e)));
    const resumed = createBatchStream(small, options);
    const epoch2 = collect(resumed.epoch(2));
    expect(epoch2.labels).toEqual(runs[2]!.labels);
    expect(sameFloats(epoch2.images, runs[2]!.images)).toBe(true);
    const tail = collect(resumed.epoch(1, { startBatch: 3 }));
    expect(tail.counts).toEqual([64, 44]);
    expect(tail.labels).toEqual(runs[1]!.labels.slice(3 * 64));
    expect(sameFloats(tail.images, runs[1]!.images.subarray(3 * 64 * PIXELS_PER_IMAGE))).toBe(true);
  });

  it('reuses its buffers instead of allocating per batch', () => {
    const stream = createBatchStream(small, { batchSize: 100 });
    const buffers = [...stream.epoch(0)].map((b) => b.images.buffer);
    expect(new Set(buffers).size).toBe(1);
  });

  it('rejects bad sizes', () => {
    expect(() => createBatchStream(small, { batchSize: 0 })).toThrow(RangeError);
    expect(() => createBatchStream(small, { batchSize: 8, seed: -1 })).toThrow(/seed/);
    expect(() => createBatchStream(small, { batchSize: 8 }).epoch(-1).next()).toThrow(/epoch/);
  });

  it('streams all 1,017 test images for evaluation', () => {
    const stream = createBatchStream(test, { batchSize: 256, shuffle: false });
    expect([...stream.epoch(0)].reduce((n, b) => n + b.count, 0)).toBe(1017);
  });
});

describe('createBatchStream on images of another shape', () => {
  // Six 5×7 images with 1 channel, pixel value = image * 35 + y * 7 + x.
  const shape = [5, 7, 1] as const;
  const images = Uint8Array.from({ length: 6 * 35 }, (_, i) => i);
  const data: ImageSet = {
    images,
    labels: Uint8Array.from([0, 1, 0, 1, 0, 1]),
    count: 6,
    shape,
    classNames: ['a', 'b'],
    mean: [0],
    std: [1 / 255],
  };

  it("normalises with the data's own shape and mean/std", () => {
    const [batch] = collect(createBatchStream(data, { batchSize: 6, shuffle: false }).epoch(0)).counts;
    expect(batch).toBe(6);
    const all = collect(createBatchStream(data, { batchSize: 4, shuffle: false }).epoch(0));
    expect(all.images.length).toBe(6 * 35);
    expect(Array.from(all.images)).toEqual(Array.from(images, (v) => Math.fround(v)));
    expect(sameFloats(all.images, normalizeImageSet(data))).toBe(true);
  });

  it('crops and flips within the image of its shape', () => {
    const out = new Float32Array(35);
    const table = new Float32Array(256).map((_, v) => v);
    writeImage(images, 1, table, out, 0, { offsetY: 4, offsetX: 4, flip: true }, shape);
    // Row 0 of image 1 mirrored: 35 + 6, 35 + 5, ...
    expect(Array.from(out.subarray(0, 7))).toEqual([41, 40, 39, 38, 37, 36, 35]);
    writeImage(images, 1, table, out, 0, { offsetY: 5, offsetX: 4, flip: false }, shape);
    expect(Array.from(out.subarray(0, 7))).toEqual([42, 43, 44, 45, 46, 47, 48]);
    expect(Array.from(out.subarray(28))).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });

  it('keeps the shape and class names through selectImages', () => {
    const picked = selectImages(data, Uint32Array.from([5, 0]));
    expect(picked.shape).toEqual(shape);
    expect(picked.classNames).toEqual(['a', 'b']);
    expect(Array.from(picked.images.subarray(0, 3))).toEqual([175, 176, 177]);
  });
});
