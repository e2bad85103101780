import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cifar10FormatError, Cifar10MetaError, Cifar10MissingFileError } from './errors.js';
import { CIFAR10_CLASS_NAMES, META_FILE, PIXELS_PER_IMAGE, RECORD_BYTES, TEST_FILE } from './format.js';
import { type Cifar10Dataset, checkCifar10Dir, readCifar10, readCifar10Batches } from './reader.js';
import { makeRecords, SUBSET_DIR, tempDir, writeFixtureDir } from './test-fixtures.js';

describe('readCifar10 on the bundled subset', () => {
  let data: Cifar10Dataset;
  beforeAll(async () => {
    data = await readCifar10(SUBSET_DIR);
  });

  it('reads 5,085 training and 1,017 test images with the official class names', () => {
    expect(data.train.count).toBe(5085);
    expect(data.test.count).toBe(1017);
    expect(data.train.images.length).toBe(5085 * 32 * 32 * 3);
    expect(data.train.labels.length).toBe(5085);
    expect(data.test.images.length).toBe(1017 * PIXELS_PER_IMAGE);
    expect(data.classNames).toEqual(CIFAR10_CLASS_NAMES);
  });

  it('keeps file order: the first labels match the official batches', () => {
    expect([...data.train.labels.subarray(0, 5)]).toEqual([6, 9, 9, 4, 1]);
    expect([...data.test.labels.subarray(0, 5)]).toEqual([3, 8, 8, 0, 6]);
  });

  it('converts the R, G, B planes to interleaved NHWC pixels', () => {
    const raw = readFileSync(join(SUBSET_DIR, 'data_batch_2.bin'));
    // Image 4 of data_batch_2 is image 1017 + 4 of the training set; look at pixel (row 5, column 7).
    const record = 4 * RECORD_BYTES;
    const pixel = 5 * 32 + 7;
    const expected = [
      raw[record + 1 + pixel],
      raw[record + 1 + 1024 + pixel],
      raw[record + 1 + 2048 + pixel],
    ];
    const at = (1017 + 4) * PIXELS_PER_IMAGE + pixel * 3;
    expect([...data.train.images.subarray(at, at + 3)]).toEqual(expected);
    expect(data.train.labels[1017 + 4]).toBe(raw[record]);
    // The three channels differ somewhere, so a plane mix-up could not pass unnoticed.
    expect(new Set(expected).size).toBeGreaterThan(1);
  });
});

describe('bad input', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads any record count from generated files', async () => {
    const fixture = await writeFixtureDir(join(dir, 'fixture'), 3);
    const data = await readCifar10(fixture);
    expect(data.train.count).toBe(15);
    expect([...data.train.labels]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4]);
    // Record 3 (label 3): R of pixel 0 is byte 0 of the record's pixels, G byte 1024, B byte 2048.
    const base = 3 * PIXELS_PER_IMAGE;
    expect([...data.train.images.subarray(base, base + 3)]).toEqual([
      21,
      (21 + 1024) & 255,
      (21 + 2048) & 255,
    ]);
    await expect(checkCifar10Dir(fixture)).resolves.toBeUndefined();
  });

  it('names a missing folder', async () => {
    const missing = join(dir, 'nowhere');
    const error = await readCifar10(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Cifar10MissingFileError);
    expect((error as Error).message).toContain(missing);
    expect((error as Error).message).toContain('downloadCifar10');
  });

  it('names a missing batch file', async () => {
    const fixture = await writeFixtureDir(join(dir, 'no-test'), 1);
    await rm(join(fixture, TEST_FILE));
    await expect(readCifar10(fixture)).rejects.toThrow(Cifar10MissingFileError);
    await expect(readCifar10(fixture)).rejects.toThrow(join(fixture, TEST_FILE));
  });

  it('rejects an empty file', async () => {
    const path = join(dir, 'empty.bin');
    await writeFile(path, new Uint8Array(0));
    await expect(readCifar10Batches([path])).rejects.toThrow(Cifar10FormatError);
    await expect(readCifar10Batches([path])).rejects.toThrow(/empty\.bin .*empty/);
  });

  it('rejects a size that is not a multiple of 3073', async () => {
    const path = join(dir, 'truncated.bin');
    await writeFile(path, makeRecords(2).subarray(0, 2 * RECORD_BYTES - 10));
    await expect(readCifar10Batches([path])).rejects.toThrow(Cifar10FormatError);
    await expect(readCifar10Batches([path])).rejects.toThrow(
      /truncated\.bin .*6136 bytes is not a multiple of 3073/,
    );
  });

  it('rejects a label byte above 9', async () => {
    const path = join(dir, 'bad-label.bin');
    const records = makeRecords(3);
    records[2 * RECORD_BYTES] = 10;
    await writeFile(path, records);
    await expect(readCifar10Batches([path])).rejects.toThrow(/bad-label\.bin .*record 2 has label byte 10/);
  });

  it('rejects a class-name file without 10 names', async () => {
    const fixture = await writeFixtureDir(join(dir, 'bad-meta'), 1);
    await writeFile(join(fixture, META_FILE), 'cat\ndog\n');
    await expect(readCifar10(fixture)).rejects.toThrow(Cifar10MetaError);
  });
});
