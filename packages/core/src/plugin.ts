import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { resolve } from 'import-meta-resolve';
import { z } from 'zod';
import { InvalidPluginError, PluginImportError } from './errors.js';
import { valueAt } from './options.js';
import type { DecompositionStrategy } from './strategy.js';

const isFunction = (what: string) =>
  z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', `expected ${what}`);

/** The shape every strategy must have (checked at run time on plugins, whose types cannot be trusted). */
const strategyShape = z.object({
  name: z.string('expected a non-empty string').min(1, 'expected a non-empty string'),
  version: z.string('expected a version string').min(1, 'expected a version string'),
  description: z.string('expected a one-sentence string'),
  optionsSchema: z.custom<z.ZodType>(
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as { parse?: unknown }).parse === 'function' &&
      typeof (v as { safeParse?: unknown }).safeParse === 'function',
    'expected a zod schema (e.g. z.object({...}))',
  ),
  supports: isFunction('a function (target, options) => Support'),
  decompose: isFunction('a function (target, options, context) => Decomposition'),
  cost: isFunction('a function (shape, options) => LayerCost'),
  layerCosts: z.record(z.string(), isFunction('a function (layer, context) => LayerCost')).optional(),
  lowerings: z.record(z.string(), isFunction('a function (layer) => StockLowering')).optional(),
});

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value) ?? ''}`.trim();
}

/** Problems of one exported value, each prefixed with where it was found. */
function problemsOf(value: unknown, where: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [`${where}: expected a strategy object, got ${describeValue(value)}`];
  }
  const result = strategyShape.safeParse(value);
  if (result.success) return [];
  return result.error.issues.map((issue) => {
    const field = issue.path.map(String).join('.');
    const found = valueAt(value, issue.path);
    return `${where}.${field}: ${issue.message}, got ${found === undefined ? 'nothing' : describeValue(found)}`;
  });
}

/** The module's strategies: `strategies` (array), else `strategy`, else the default export (one or an array). */
function exportedStrategies(module: Record<string, unknown>): { where: string; value: unknown }[] | string {
  for (const key of ['strategies', 'strategy', 'default']) {
    const value = module[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      if (value.length === 0) return `export '${key}' is an empty array`;
      return value.map((v, i) => ({ where: `${key}[${i}]`, value: v }));
    }
    return [{ where: key, value }];
  }
  const found = Object.keys(module);
  return `it has no default export and no 'strategy' or 'strategies' export (exports: ${found.length > 0 ? found.join(', ') : 'none'})`;
}

/** The URL to import: file paths resolved against `from`, package names resolved as Node would from there. */
function moduleUrl(specifier: string, from: string | undefined): string {
  if (specifier.startsWith('file:')) return specifier;
  const base = path.resolve(from ?? process.cwd());
  const isPath = specifier.startsWith('.') || path.isAbsolute(specifier) || /^[A-Za-z]:[\\/]/.test(specifier);
  if (isPath) return pathToFileURL(path.resolve(base, specifier)).href;
  return resolve(specifier, pathToFileURL(path.join(base, path.sep)).href);
}

/** Where `loadStrategyPlugin` resolves specifiers from. */
export interface LoadStrategyPluginOptions {
  /** Directory that relative paths and package names are resolved from (default: the working directory). */
  from?: string;
}

/**
 * Imports a strategy plugin by package name or file path and checks what it exports: `strategies` (an
 * array), `strategy`, or the default export (a strategy or an array). Throws `PluginImportError` when the
 * module cannot be imported and `InvalidPluginError` listing every missing or wrong field otherwise.
 */
export async function loadStrategyPlugin(
  specifier: string,
  options: LoadStrategyPluginOptions = {},
): Promise<DecompositionStrategy[]> {
  let module: Record<string, unknown>;
  try {
    module = (await import(moduleUrl(specifier, options.from))) as Record<string, unknown>;
  } catch (error) {
    throw new PluginImportError(specifier, error);
  }
  const exported = exportedStrategies(module);
  if (typeof exported === 'string') throw new InvalidPluginError(specifier, [exported]);
  const problems = exported.flatMap(({ where, value }) => problemsOf(value, where));
  if (problems.length > 0) throw new InvalidPluginError(specifier, problems);
  return exported.map(({ value }) => value as DecompositionStrategy);
}
