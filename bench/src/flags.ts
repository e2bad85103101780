/**
 * Parsers of numeric flag values for the bench scripts; each throws the script's own option error (`OptionError`)
 * with a message that names the flag and the value.
 */
export function flagParsers(OptionError: new (message: string) => Error) {
  return {
    /** An integer ≥ `min`. */
    integer(flag: string, text: string, min: number): number {
      const n = Number(text);
      if (!Number.isInteger(n) || n < min)
        throw new OptionError(`--${flag} must be an integer ≥ ${min}, got '${text}'.`);
      return n;
    },
    /** A number strictly between 0 and 1. */
    fraction(flag: string, text: string): number {
      const x = Number(text);
      if (!(x > 0 && x < 1)) throw new OptionError(`--${flag} must be in (0, 1), got '${text}'.`);
      return x;
    },
  };
}
