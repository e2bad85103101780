import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describeFileSystemFailure, fileSystemFailure, ModelFileError } from './errors.js';
import { createDirectory, temporaryPath } from './temporary.js';
import { withSeparableDepthMultipliers } from './topology.js';

/** File name of the model topology and weights manifest inside a model directory. */
export const MODEL_JSON_FILE = 'model.json';
/** File name of the weights inside a model directory written by {@link fileSystem}. */
export const WEIGHTS_FILE = 'weights.bin';

const BYTES_PER_DTYPE: Readonly<Record<string, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

function isNodeError(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

/** A path to `model.json` names the file; any other path names the directory that holds it. */
function resolveModelPaths(target: string): { directory: string; modelJson: string } {
  if (target.endsWith('.json')) return { directory: path.dirname(target), modelJson: target };
  return { directory: target, modelJson: path.join(target, MODEL_JSON_FILE) };
}

/** Bytes the weights described by `specs` occupy, or undefined when variable-length strings make it unknowable. */
function expectedWeightBytes(specs: readonly tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    const bytes = BYTES_PER_DTYPE[dtype];
    if (bytes === undefined) return undefined;
    total += spec.shape.reduce((size, dim) => size * dim, 1) * bytes;
  }
  return total;
}

function parseModelJson(text: string, file: string): tf.io.ModelJSON {
  const corrupt = (why: string) =>
    new ModelFileError(
      'corrupt-model-json',
      file,
      `${file} is not a valid tfjs model.json (${why}). Re-save the model, or restore the file from a backup.`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw corrupt(error instanceof Error ? error.message : String(error));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw corrupt('expected a JSON object');
  }
  const json = parsed as Partial<tf.io.ModelJSON>;
  if (typeof json.modelTopology !== 'object' || json.modelTopology === null) {
    throw corrupt('no "modelTopology" object');
  }
  const manifest: unknown = json.weightsManifest ?? [];
  const groupsValid =
    Array.isArray(manifest) &&
    manifest.every(
      (group: Partial<tf.io.WeightsManifestConfig[number]> | null) =>
        group !== null &&
        Array.isArray(group.paths) &&
        group.paths.every((p: unknown) => typeof p === 'string') &&
        Array.isArray(group.weights),
    );
  if (!groupsValid) throw corrupt('"weightsManifest" must be a list of { paths, weights } groups');
  return json as tf.io.ModelJSON;
}

async function readWeights(
  directory: string,
  manifest: tf.io.WeightsManifestConfig,
): Promise<[tf.io.WeightsManifestEntry[], ArrayBuffer]> {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: ArrayBuffer[] = [];
  const files: string[] = [];
  for (const group of manifest) {
    specs.push(...group.weights);
    for (const relative of group.paths) {
      const file = path.join(directory, relative);
      files.push(file);
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        if (!isNodeError(error, 'ENOENT')) throw error;
        throw new ModelFileError(
          'missing-weights',
          file,
          `Weights file ${file} named by ${MODEL_JSON_FILE} does not exist. Copy it beside ${MODEL_JSON_FILE}, or re-save the model.`,
        );
      }
      buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    }
  }
  const data = tf.io.CompositeArrayBuffer.join(buffers);
  const expected = expectedWeightBytes(specs);
  if (expected !== undefined && expected !== data.byteLength) {
    throw new ModelFileError(
      'weights-size-mismatch',
      files.join(', '),
      `Weights file ${files.join(', ')} holds ${data.byteLength} bytes but ${MODEL_JSON_FILE} describes ${expected}: ` +
        'the weights were truncated or belong to another model. Re-save the model to write a matching pair.',
    );
  }
  return [specs, data];
}

/** The `model.json` for `artifacts` (what tfjs-core's unexported `getModelJSONForModelArtifacts` builds). */
function modelJsonFor(
  artifacts: tf.io.ModelArtifacts,
  weightsManifest: tf.io.WeightsManifestConfig,
): tf.io.ModelJSON {
  const { weightData: _data, weightSpecs: _specs, ...described } = artifacts;
  return { ...described, modelTopology: artifacts.modelTopology ?? {}, weightsManifest };
}

/** Options of {@link fileSystem}. */
export interface FileSystemOptions {
  /**
   * More files to save into the model directory with the model, by file name, in the same all-or-nothing step
   * (e.g. a training checkpoint's optimizer state, or the plugins a model needs).
   */
  extraFiles?: Readonly<Record<string, string | Uint8Array>>;
}

/** Whether `directory` exists as a directory (false when nothing is there, or a file). */
async function isDirectory(directory: string): Promise<boolean> {
  try {
    return (await stat(directory)).isDirectory();
  } catch (error) {
    if (isNodeError(error, 'ENOENT')) return false;
    throw error;
  }
}

/**
 * Writes `files` into `directory` so that a failure part-way (a full disk, no permission) changes nothing there:
 * every file is written and flushed into a staging folder first. A new directory is then that folder renamed
 * into place, whole; into an existing one the files are renamed one by one, `model.json` (listed last) last,
 * and its other files stay. The staging folder is removed on failure.
 */
async function writeAllOrNothing(
  directory: string,
  files: readonly (readonly [string, string | Uint8Array])[],
): Promise<void> {
  const exists = await isDirectory(directory);
  // Inside an existing directory, so that only it must be writable; beside a new one, which then appears whole.
  const stage = temporaryPath(exists ? path.join(directory, 'save') : directory);
  if (!exists) await createDirectory(path.dirname(directory));
  try {
    await mkdir(stage);
    for (const [name, data] of files) await writeFile(path.join(stage, name), data, { flush: true });
    if (!exists) {
      await rename(stage, directory);
      return;
    }
    for (const [name] of files) await rename(path.join(stage, name), path.join(directory, name));
    await rm(stage, { recursive: true });
  } catch (error) {
    await rm(stage, { recursive: true, force: true });
    throw error;
  }
}

/** `error` as a {@link ModelFileError} naming `directory` when it is a file-system failure the user can fix. */
function asModelFileError(error: unknown, what: string, directory: string, consequence = ''): unknown {
  const failure = fileSystemFailure(error);
  if (failure === null) return error;
  return new ModelFileError(
    failure.problem,
    directory,
    `${describeFileSystemFailure(what, failure)}${consequence}`,
    { cause: error },
  );
}

/**
 * A `tf.io.IOHandler` that saves a model as `model.json` + `weights.bin` in a directory on Node's file
 * system and loads it back (the layout `tf.loadLayersModel` reads over HTTP, too).
 *
 * `target` is the model directory, or the path of its `model.json`. Saving writes every file (with
 * `options.extraFiles`) into a temporary folder first, `.<name>.tmp-<pid>-<random>` beside a new directory or
 * inside an existing one, and only then renames it into place, so a full disk or a permission problem never
 * leaves a half-written model or replaces a good one. Such failures, on save or load, throw
 * {@link ModelFileError} with a file-system `problem` (`disk-full`, `permission-denied`, `read-only`,
 * `not-a-directory`, `is-a-directory`). Loading also throws it for a missing directory, a missing or corrupt
 * `model.json`, a missing weights file, or weights of the wrong size.
 */
export function fileSystem(target: string, options: FileSystemOptions = {}): tf.io.IOHandler {
  const { directory, modelJson } = resolveModelPaths(target);
  return {
    async save(saved: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const artifacts = withSeparableDepthMultipliers(saved);
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new ModelFileError(
          'unsupported-artifacts',
          modelJson,
          'The file:// handler saves models with a JSON topology only (layers or graph models from tfjs), not binary GraphDef topologies.',
        );
      }
      const weightsManifest: tf.io.WeightsManifestConfig = [
        { paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] },
      ];
      const json = modelJsonFor(artifacts, weightsManifest);
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? []));
      try {
        // model.json last: into an existing directory it is the last file replaced.
        await writeAllOrNothing(directory, [
          [WEIGHTS_FILE, weights],
          ...Object.entries(options.extraFiles ?? {}),
          [path.basename(modelJson), JSON.stringify(json)],
        ]);
      } catch (error) {
        throw asModelFileError(
          error,
          `Cannot save the model to ${directory}`,
          directory,
          ' A model saved there before is left as it was.',
        );
      }
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      try {
        return withSeparableDepthMultipliers(await loadArtifacts(directory, modelJson));
      } catch (error) {
        throw asModelFileError(error, `Cannot load the model from ${directory}`, directory);
      }
    },
  };
}

async function loadArtifacts(directory: string, modelJson: string): Promise<tf.io.ModelArtifacts> {
  try {
    await stat(directory);
  } catch (error) {
    if (!isNodeError(error, 'ENOENT')) throw error;
    throw new ModelFileError(
      'missing-directory',
      directory,
      `Model directory ${directory} does not exist. Check the path, or save a model there first with model.save('file://${directory}').`,
    );
  }
  let text: string;
  try {
    text = await readFile(modelJson, 'utf8');
  } catch (error) {
    if (!isNodeError(error, 'ENOENT')) throw error;
    throw new ModelFileError(
      'missing-model-json',
      modelJson,
      `${modelJson} does not exist: ${directory} holds no saved model. Point at the directory that model.save('file://...') wrote.`,
    );
  }
  const json = parseModelJson(text, modelJson);
  return tf.io.getModelArtifactsForJSON(json, (manifest) => readWeights(directory, manifest));
}
