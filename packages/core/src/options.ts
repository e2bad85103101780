import { type OptionIssue, StrategyOptionsError } from './errors.js';
import type { DecompositionStrategy } from './strategy.js';

/** The value at `path` inside `input` (undefined where the path leads nowhere). */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/**
 * Parses raw options with the strategy's `optionsSchema`: the parsed (defaults filled) options, or a
 * `StrategyOptionsError` naming the strategy, the layer (if any), each bad field, its value and the expected form.
 */
export function parseStrategyOptions<Options>(
  strategy: DecompositionStrategy<Options>,
  raw: unknown,
  layer: string | null = null,
): Options {
  const result = strategy.optionsSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues: OptionIssue[] = result.error.issues.map((issue) => ({
    field: issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.'),
    value: valueAt(raw, issue.path),
    expected: issue.message,
  }));
  throw new StrategyOptionsError(strategy.name, layer, issues);
}
