import { describe, expect, it } from 'vitest';
import { averageRanks, spearman } from './scan-signal.js';

describe('averageRanks', () => {
  it('ranks from 1 and gives tied values the mean of the ranks they span', () => {
    expect(averageRanks([30, 10, 20])).toEqual([3, 1, 2]);
    expect(averageRanks([10, 20, 20, 30])).toEqual([1, 2.5, 2.5, 4]);
    expect(averageRanks([0, 0, 0, 5, 0])).toEqual([2.5, 2.5, 2.5, 5, 2.5]);
    expect(averageRanks([])).toEqual([]);
  });
});

describe('spearman', () => {
  it('matches a textbook value without ties', () => {
    // Wikipedia's example (IQ against hours of TV a week): ρ = −29/165.
    const iq = [106, 100, 86, 101, 99, 103, 97, 113, 112, 110];
    const tv = [7, 27, 2, 50, 28, 29, 20, 12, 6, 17];
    expect(spearman(iq, tv)).toBeCloseTo(-29 / 165, 12);
  });

  it('correlates the average ranks when there are ties', () => {
    // Ranks of b: 1, 2, 3.5, 5, 3.5; their Pearson correlation with 1..5 is 8 / √95.
    expect(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(8 / Math.sqrt(95), 12);
  });

  it('is ±1 for any monotone relation and symmetric', () => {
    const x = [0.3, -1, 2, 7, 4];
    expect(spearman(x, x.map(Math.exp))).toBeCloseTo(1, 12);
    expect(
      spearman(
        x,
        x.map((v) => -(v ** 3)),
      ),
    ).toBeCloseTo(-1, 12);
    const y = [1, 1, 0, 2, 3];
    expect(spearman(x, y)).toBe(spearman(y, x));
  });

  it('is NaN for a constant series or fewer than two values, and rejects series of different lengths', () => {
    expect(spearman([1, 2, 3], [0, 0, 0])).toBeNaN();
    expect(spearman([1], [2])).toBeNaN();
    expect(() => spearman([1, 2], [1, 2, 3])).toThrow(RangeError);
  });
});
