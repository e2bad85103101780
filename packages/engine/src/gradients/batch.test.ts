import { describe, expect, it } from 'vitest';
import { checkBatch, splitBatch } from './batch.js';
import { InvalidBatchError } from './errors.js';

describe('splitBatch', () => {
  it('gives contiguous slices whose sizes differ by at most one', () => {
    expect(splitBatch(7, 3)).toEqual([
      { start: 0, count: 3 },
      { start: 3, count: 2 },
      { start: 5, count: 2 },
    ]);
    expect(splitBatch(1, 2)).toEqual([
      { start: 0, count: 1 },
      { start: 1, count: 0 },
    ]);
  });
});

describe('checkBatch', () => {
  const batch = { images: new Float32Array(6), labels: Int32Array.from([0, 2]), count: 2 };

  it('accepts a well-formed batch', () => {
    expect(() => checkBatch(batch, 3, 3)).not.toThrow();
  });

  it.each([
    [{ ...batch, count: 0 }, /positive integer/],
    [{ ...batch, images: new Float32Array(5) }, /need 6/],
    [{ ...batch, labels: Int32Array.from([0]) }, /1 labels for 2/],
    [{ ...batch, labels: Int32Array.from([0, 3]) }, /Label 3 at index 1/],
  ])('rejects a malformed batch (%#)', (bad, message) => {
    expect(() => checkBatch(bad, 3, 3)).toThrow(InvalidBatchError);
    expect(() => checkBatch(bad, 3, 3)).toThrow(message);
  });
});
