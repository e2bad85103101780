import { DuplicateStrategyError, UnknownStrategyError } from './errors.js';
import type { DecompositionStrategy } from './strategy.js';

/** Strategies by unique name. */
export class StrategyRegistry {
  readonly #strategies = new Map<string, DecompositionStrategy>();

  /** Adds strategies; a name already registered is a `DuplicateStrategyError` (nothing is added then). */
  register(...strategies: DecompositionStrategy[]): this {
    const names = new Set<string>();
    for (const s of strategies) {
      if (this.#strategies.has(s.name) || names.has(s.name)) throw new DuplicateStrategyError(s.name);
      names.add(s.name);
    }
    for (const s of strategies) this.#strategies.set(s.name, s);
    return this;
  }

  /** The strategy of that name; an `UnknownStrategyError` listing the known names when there is none. */
  get(name: string): DecompositionStrategy {
    const strategy = this.#strategies.get(name);
    if (strategy === undefined) throw new UnknownStrategyError(name, this.names());
    return strategy;
  }

  /** Whether a strategy of that name is registered. */
  has(name: string): boolean {
    return this.#strategies.has(name);
  }

  /** Registered names, sorted. */
  names(): string[] {
    return [...this.#strategies.keys()].sort();
  }

  /** Registered strategies, sorted by name. */
  list(): DecompositionStrategy[] {
    return this.names().map((name) => this.#strategies.get(name)!);
  }
}
