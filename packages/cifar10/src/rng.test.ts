import { describe, expect, it } from 'vitest';
import { deriveSeed, Rng } from './rng.js';

const draw = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.nextUint32());

describe('Rng', () => {
  it('gives the same sequence for the same seed and another for another seed', () => {
    expect(draw(Rng.fromSeed(42), 8)).toEqual(draw(Rng.fromSeed(42), 8));
    expect(draw(Rng.fromSeed(42), 8)).not.toEqual(draw(Rng.fromSeed(43), 8));
  });

  it('resumes exactly from a state saved as JSON', () => {
    const rng = Rng.fromSeed(7);
    draw(rng, 5);
    const saved = JSON.parse(JSON.stringify(rng.getState()));
    const expected = draw(rng, 10);
    expect(draw(Rng.fromState(saved), 10)).toEqual(expected);
  });

  it('rejects a state that is not one', () => {
    expect(() => Rng.fromState({ algorithm: 'sfc32', state: [1, 2, 3] } as never)).toThrow(
      /Not an Rng state/,
    );
    expect(() => Rng.fromState({ algorithm: 'sfc32', state: [1, 2, 3, -1] })).toThrow(TypeError);
  });

  it('draws integers in range, covering it roughly evenly', () => {
    const rng = Rng.fromSeed(1);
    const counts = new Array(9).fill(0);
    for (let i = 0; i < 9000; i++) counts[rng.nextInt(9)] += 1;
    for (const count of counts) expect(count).toBeGreaterThan(850);
    expect(() => rng.nextInt(0)).toThrow(RangeError);
    const float = rng.nextFloat();
    expect(float).toBeGreaterThanOrEqual(0);
    expect(float).toBeLessThan(1);
  });

  it('shuffles into a permutation', () => {
    const items = Uint32Array.from({ length: 100 }, (_, i) => i);
    Rng.fromSeed(3).shuffle(items);
    expect([...items].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect([...items]).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('derives distinct seeds for distinct (seed, parts)', () => {
    const seeds = new Set<number>();
    for (let seed = 0; seed < 4; seed++)
      for (let epoch = 0; epoch < 50; epoch++) seeds.add(deriveSeed(seed, epoch));
    expect(seeds.size).toBe(200);
    expect(deriveSeed(5, 1, 2)).toBe(deriveSeed(5, 1, 2));
    expect(deriveSeed(5, 1, 2)).not.toBe(deriveSeed(5, 2, 1));
  });
});
