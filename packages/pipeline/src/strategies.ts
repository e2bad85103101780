import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { basisStrategy } from '@decompose/basis';
import { type DecompositionStrategy, PluginImportError, StrategyRegistry } from '@decompose/core';
import { loadStrategyPlugin } from '@decompose/core/node';
import { svdStrategy } from '@decompose/svd';
import tuckerStrategy from 'decompose-plugin-tucker';
import { StrategyChoiceError } from './errors.js';

/** Strategies known by name (`basis`, `svd`, `tucker`); anything else is loaded as a plugin. */
export const BUILT_IN_STRATEGIES: readonly DecompositionStrategy[] = [
  basisStrategy,
  svdStrategy,
  tuckerStrategy,
];

/**
 * Modules whose import registers the layer classes of the built-in strategies (handed to worker threads and
 * processes so they can rebuild a compressed model).
 */
export const BUILT_IN_LAYER_MODULES = ['@decompose/basis', '@decompose/svd', 'decompose-plugin-tucker'];

/** A registry holding the built-in strategies. */
export function builtInRegistry(): StrategyRegistry {
  return new StrategyRegistry().register(...BUILT_IN_STRATEGIES);
}

/** A plugin specifier as something importable from anywhere: paths become absolute, package names stay. */
export function absoluteSpecifier(specifier: string): string {
  return specifier.startsWith('.') || path.isAbsolute(specifier) ? path.resolve(specifier) : specifier;
}

/**
 * Loads a strategy plugin: a path, or a package name resolved from the working directory and then from where
 * decompose is installed (so plugins installed beside it are found from anywhere). A failure reports the first
 * attempt's error (core's `PluginImportError` and kin).
 */
export async function loadPlugin(specifier: string): Promise<DecompositionStrategy[]> {
  try {
    return await loadStrategyPlugin(specifier);
  } catch (error) {
    if (!(error instanceof PluginImportError) || absoluteSpecifier(specifier) !== specifier) throw error;
    try {
      return await loadStrategyPlugin(specifier, { from: fileURLToPath(new URL('.', import.meta.url)) });
    } catch {
      throw error;
    }
  }
}

/** A strategy and the plugin (importable specifier) a saved model using it must import, if any. */
export interface ResolvedStrategy {
  strategy: DecompositionStrategy;
  /** Null for the built-in strategies. */
  plugin: string | null;
}

/**
 * A strategy by built-in name (`basis`, `svd`, `tucker`) or by the package of a built-in strategy
 * (`decompose-plugin-tucker`), else a plugin package name or file path ({@link loadPlugin}) exporting exactly
 * one strategy. Worker threads and processes resolve the specifier the user gave in the same way.
 *
 * @throws StrategyChoiceError naming `field` when the plugin exports several strategies; core's plugin errors
 *   when it cannot be imported or is not a strategy.
 */
export async function resolveStrategy(specifier: string, field: string): Promise<ResolvedStrategy> {
  const registry = builtInRegistry();
  if (registry.has(specifier)) return { strategy: registry.get(specifier), plugin: null };
  // The built-in strategies' own packages (e.g. `decompose-plugin-tucker`) are already imported: reuse them.
  const bundled = BUILT_IN_STRATEGIES[BUILT_IN_LAYER_MODULES.indexOf(specifier)];
  if (bundled !== undefined) return { strategy: bundled, plugin: null };
  const loaded = await loadPlugin(specifier);
  const [strategy] = loaded;
  if (loaded.length !== 1 || strategy === undefined) {
    throw new StrategyChoiceError(
      field,
      `plugin '${specifier}' exports ${loaded.length} strategies (${loaded.map((s) => s.name).join(', ')}); ` +
        `expected a plugin with exactly one, or a built-in name: ${registry.names().join(', ')}`,
    );
  }
  return {
    strategy,
    plugin: BUILT_IN_STRATEGIES.includes(strategy) ? null : absoluteSpecifier(specifier),
  };
}
