/** The full state of an {@link Rng}: four unsigned 32-bit integers, safe to store as JSON. */
export interface RngState {
  readonly algorithm: 'sfc32';
  readonly state: readonly [number, number, number, number];
}

/** One step of splitmix32 (a 32-bit variant of Steele et al.'s SplitMix): spreads a seed over 32 bits. */
function splitmix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/**
 * Mixes a seed and any number of non-negative integers (epoch, batch index, …) into one 32-bit seed, so
 * each (seed, epoch, …) gets its own independent stream without stepping through the ones before it.
 */
export function deriveSeed(seed: number, ...parts: readonly number[]): number {
  let mixed = splitmix32(seed >>> 0);
  // Absorbed one at a time into the running hash, so the order of the parts matters.
  for (const part of parts) mixed = splitmix32(mixed ^ (part >>> 0));
  return mixed;
}

/**
 * A small seeded PRNG: Chris Doty-Humphrey's sfc32 ("Small Fast Chaotic", from PractRand; passes
 * PractRand and BigCrush), seeded through splitmix32. Not for cryptography. Its state is four 32-bit
 * integers, exported and restored with {@link Rng.getState} / {@link Rng.fromState} so a checkpoint can
 * resume the exact sequence.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  private constructor(state: readonly [number, number, number, number]) {
    [this.a, this.b, this.c, this.d] = state;
  }

  /** A generator seeded by a 32-bit integer (other numbers are truncated to their low 32 bits). */
  static fromSeed(seed: number): Rng {
    const s0 = splitmix32(seed >>> 0);
    const s1 = splitmix32(s0);
    const s2 = splitmix32(s1);
    const rng = new Rng([s0, s1, s2, 1]);
    // As PractRand seeds sfc32: counter 1, then 12 outputs discarded so similar seeds diverge.
    for (let i = 0; i < 12; i++) rng.nextUint32();
    return rng;
  }

  /**
   * Restores a generator from {@link Rng.getState} output (e.g. parsed from a checkpoint's JSON).
   *
   * @throws TypeError if the state is not an sfc32 state of four unsigned 32-bit integers.
   */
  static fromState(state: RngState): Rng {
    const valid =
      state?.algorithm === 'sfc32' &&
      Array.isArray(state.state) &&
      state.state.length === 4 &&
      state.state.every((word) => Number.isInteger(word) && word >= 0 && word <= 0xffffffff);
    if (!valid) {
      throw new TypeError(
        `Not an Rng state: ${JSON.stringify(state)}. Pass the object returned by rng.getState().`,
      );
    }
    return new Rng(state.state);
  }

  /** The generator's current state as plain JSON-safe data. */
  getState(): RngState {
    return { algorithm: 'sfc32', state: [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0] };
  }

  /** The next unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /**
   * An integer uniformly in [0, bound), without modulo bias (rejection sampling).
   *
   * @throws RangeError if `bound` is not an integer in 1..2^32.
   */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 4294967296) {
      throw new RangeError(`nextInt bound must be an integer in 1..2^32, got ${bound}.`);
    }
    const limit = 4294967296 - (4294967296 % bound);
    let value = this.nextUint32();
    while (value >= limit) value = this.nextUint32();
    return value % bound;
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<E, T extends { length: number; [index: number]: E }>(items: T): T {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const held = items[i]!;
      items[i] = items[j]!;
      items[j] = held;
    }
    return items;
  }
}
