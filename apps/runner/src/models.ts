import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { basisStrategy } from '@decompose/basis';
import type { DecompositionStrategy } from '@decompose/core';
import { PluginImportError, StrategyRegistry } from '@decompose/core';
import { loadStrategyPlugin } from '@decompose/core/node';
import { fileSystem } from '@decompose/engine';
import { svdStrategy } from '@decompose/svd';
import * as tfl from '@tensorflow/tfjs-layers';
import tuckerStrategy from 'decompose-plugin-tucker';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { ConfigFileError, jsonText } from './files.js';

/** Strategies the runner knows by name; anything else is loaded as a plugin. */
export const BUILT_IN_STRATEGIES: readonly DecompositionStrategy[] = [
  basisStrategy,
  svdStrategy,
  tuckerStrategy,
];

/**
 * Modules whose import registers the layer classes of the built-in strategies (handed to gradient workers so
 * they can rebuild a compressed model).
 */
export const BUILT_IN_LAYER_MODULES = ['@decompose/basis', '@decompose/svd', 'decompose-plugin-tucker'];

/** A registry holding the built-in strategies. */
export function builtInRegistry(): StrategyRegistry {
  return new StrategyRegistry().register(...BUILT_IN_STRATEGIES);
}

/**
 * Beside a saved model: the plugins whose layers it uses, so that loading it imports them first (their layer
 * classes must be registered before tfjs can rebuild the model).
 */
const PLUGINS_FILE = 'plugins.json';
const pluginsSchema = z.object({ plugins: z.array(z.string()) });

/** A plugin specifier as something importable from anywhere: paths become absolute, package names stay. */
export function absoluteSpecifier(specifier: string): string {
  return specifier.startsWith('.') || path.isAbsolute(specifier) ? path.resolve(specifier) : specifier;
}

/**
 * Loads a strategy plugin: a path, or a package name resolved from the working directory and then from where
 * the runner is installed (so plugins installed beside `decompose` are found from anywhere). A failure reports
 * the first attempt's error.
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

/**
 * Saves `model` as `<dir>/model.json` + `weights.bin`, noting the plugins its layers come from, all or nothing:
 * a failure (the engine's `ModelFileError`) leaves a model saved there before as it was.
 */
export async function saveModel(
  model: tfl.LayersModel,
  dir: string,
  plugins: readonly string[] = [],
): Promise<void> {
  const extraFiles: Record<string, string> =
    plugins.length > 0 ? { [PLUGINS_FILE]: jsonText({ plugins }) } : {};
  await model.save(fileSystem(dir, { extraFiles }));
}

/** The plugins a saved model needs (empty when it was written without any). */
export async function modelPlugins(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path.join(dir, PLUGINS_FILE), 'utf8');
  } catch {
    return [];
  }
  let parsed: z.ZodSafeParseResult<{ plugins: string[] }> | null = null;
  try {
    parsed = pluginsSchema.safeParse(JSON.parse(text));
  } catch {
    // Not JSON: reported below like a wrong shape.
  }
  if (!parsed?.success) {
    throw new ConfigFileError(
      `${path.join(dir, PLUGINS_FILE)} must be JSON of the form { "plugins": ["<package or path>", ...] }; fix or delete it.`,
    );
  }
  return parsed.data.plugins;
}

/**
 * Loads a model saved by {@link saveModel} (or any tfjs layers model directory), importing the plugins it
 * needs first. Throws the engine's `ModelFileError` for a missing or damaged directory.
 */
export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  for (const plugin of await modelPlugins(dir)) await loadPlugin(plugin);
  return tfl.loadLayersModel(fileSystem(dir));
}

/**
 * The input shape (without the batch dimension) that a saved model's `model.json` declares, read without
 * loading the model (e.g. to read data at the model's input size first); undefined when it cannot tell
 * (no such file, another format, several inputs), and {@link loadModel} then reports the problem.
 */
export async function readModelInputShape(dir: string): Promise<(number | null)[] | undefined> {
  try {
    const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as {
      modelTopology?: { config?: unknown };
    };
    const config = json.modelTopology?.config as
      | { layers?: LayerJson[]; input_layers?: [string, ...unknown[]][] }
      | LayerJson[]
      | undefined;
    const layers = Array.isArray(config) ? config : (config?.layers ?? []);
    const inputs = Array.isArray(config) ? undefined : config?.input_layers;
    if (inputs && inputs.length !== 1) return undefined;
    const layer = inputs ? layers.find((l) => l.name === inputs[0]?.[0]) : layers[0];
    const shape = layer?.config?.batch_input_shape ?? layer?.config?.batchInputShape;
    return Array.isArray(shape) ? shape.slice(1) : undefined;
  } catch {
    return undefined;
  }
}

interface LayerJson {
  name?: string;
  config?: { batch_input_shape?: (number | null)[]; batchInputShape?: (number | null)[] };
}

/** A strategy and the plugin (importable specifier) a saved model using it must import, if any. */
export interface ResolvedStrategy {
  strategy: DecompositionStrategy;
  /** Null for strategies the runner ships with. */
  plugin: string | null;
}

/**
 * A strategy by built-in name (`basis`, `svd`, `tucker`) or by the package of a strategy the runner ships with
 * (`decompose-plugin-tucker`), else a plugin package name or file path ({@link loadPlugin}) exporting exactly one
 * strategy.
 *
 * @throws ConfigError naming `field` when the plugin exports several strategies; core's plugin errors when it
 *   cannot be imported or is not a strategy.
 */
export async function resolveStrategy(specifier: string, field: string): Promise<ResolvedStrategy> {
  const registry = builtInRegistry();
  if (registry.has(specifier)) return { strategy: registry.get(specifier), plugin: null };
  // The runner's own strategy packages (e.g. `decompose-plugin-tucker`) are already imported: reuse them.
  const bundled = BUILT_IN_STRATEGIES[BUILT_IN_LAYER_MODULES.indexOf(specifier)];
  if (bundled !== undefined) return { strategy: bundled, plugin: null };
  const loaded = await loadPlugin(specifier);
  const [strategy] = loaded;
  if (loaded.length !== 1 || strategy === undefined) {
    throw new ConfigError([
      `${field}: plugin '${specifier}' exports ${loaded.length} strategies (${loaded.map((s) => s.name).join(', ')}); ` +
        `expected a plugin with exactly one, or a built-in name: ${registry.names().join(', ')}`,
    ]);
  }
  return {
    strategy,
    plugin: BUILT_IN_STRATEGIES.includes(strategy) ? null : absoluteSpecifier(specifier),
  };
}
