import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cifar10FormatError } from './errors.js';
import { decodeBatch, PIXELS_PER_IMAGE, RECORD_BYTES, TEST_FILE } from './format.js';
import { makeRecords, SUBSET_DIR } from './test-fixtures.js';

describe('decodeBatch', () => {
  it('decodes an in-memory batch like the file reader, up to a limit', () => {
    const { images, labels, count } = decodeBatch(readFileSync(join(SUBSET_DIR, TEST_FILE)), { limit: 5 });
    expect(count).toBe(5);
    expect(Array.from(labels)).toEqual([3, 8, 8, 0, 6]);
    expect(images.length).toBe(5 * PIXELS_PER_IMAGE);
  });

  it('rejects empty, truncated and mislabelled data, naming the source', () => {
    expect(() => decodeBatch(new Uint8Array(0), { source: 'x.bin' })).toThrow(/x\.bin.*empty/);
    expect(() => decodeBatch(makeRecords(2).subarray(1))).toThrow(Cifar10FormatError);
    const bad = makeRecords(1);
    bad[0] = 10;
    expect(() => decodeBatch(bad)).toThrow(/label byte 10/);
    expect(RECORD_BYTES).toBe(3073);
  });
});
