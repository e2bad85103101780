import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileSystem } from '@decompose/engine';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { PluginsFileError } from './errors.js';
import { loadPlugin } from './strategies.js';

/**
 * Beside a saved model: the plugins whose layers it uses, so that loading it imports them first (their layer
 * classes must be registered before tfjs can rebuild the model).
 */
export const PLUGINS_FILE = 'plugins.json';
const pluginsSchema = z.object({ plugins: z.array(z.string()) });

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
    plugins.length > 0 ? { [PLUGINS_FILE]: `${JSON.stringify({ plugins }, null, 2)}\n` } : {};
  await model.save(fileSystem(dir, { extraFiles }));
}

/**
 * The plugins a saved model needs (empty when it was written without any).
 *
 * @throws PluginsFileError when its `plugins.json` is not a list of plugins.
 */
export async function modelPlugins(dir: string): Promise<string[]> {
  const file = path.join(dir, PLUGINS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  let parsed: z.ZodSafeParseResult<{ plugins: string[] }> | null = null;
  try {
    parsed = pluginsSchema.safeParse(JSON.parse(text));
  } catch {
    // Not JSON: reported below like a wrong shape.
  }
  if (!parsed?.success) throw new PluginsFileError(file);
  return parsed.data.plugins;
}

/**
 * Loads a model saved by {@link saveModel} (or any tfjs layers model folder), importing the plugins it needs
 * first. Throws the engine's `ModelFileError` for a missing or damaged folder.
 */
export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  for (const plugin of await modelPlugins(dir)) await loadPlugin(plugin);
  return tfl.loadLayersModel(fileSystem(dir));
}

interface LayerJson {
  name?: string;
  config?: { batch_input_shape?: (number | null)[]; batchInputShape?: (number | null)[] };
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
