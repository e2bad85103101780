import { withSeparableDepthMultipliers } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { PackedFormatError } from './errors.js';
import { frame, unframe } from './packing.js';

const MAGIC = 'DCMD';

const headerSchema = z.object({
  version: z.literal(1),
  modelTopology: z.record(z.string(), z.unknown()),
  weightSpecs: z.array(
    z.object({ name: z.string(), shape: z.array(z.number().int()), dtype: z.string() }).loose(),
  ),
  plugins: z.array(z.string()),
});

/** A model unpacked by {@link unpackModel}: what `tf.io.fromMemory` loads, and the plugins it needs first. */
export interface PackedModel {
  artifacts: tf.io.ModelArtifacts;
  /** Importable specifiers of the plugins whose layer classes the model uses (import them before loading). */
  plugins: string[];
}

/** The model's topology and weights as `model.save` hands them to a save handler. */
async function saveArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = withSeparableDepthMultipliers(artifacts);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  if (saved === undefined) throw new Error('model.save did not hand over the model artifacts.');
  return saved;
}

/**
 * A model as one buffer (topology, weight specs, weights, and the plugins its layers come from), to travel
 * where no file is shared: to a worker thread or process, or through a queue. The same model gives the same
 * bytes, so their hash names it. {@link unpackModel} and {@link loadPackedModel} reverse it.
 */
export async function packModel(
  model: tfl.LayersModel,
  plugins: readonly string[] = [],
): Promise<Uint8Array> {
  const artifacts = await saveArtifacts(model);
  const weights = artifacts.weightData;
  if (weights === undefined || Array.isArray(weights)) {
    throw new Error('model.save handed over no weights, or weights in several buffers.');
  }
  const header: z.infer<typeof headerSchema> = {
    version: 1,
    modelTopology: artifacts.modelTopology as Record<string, unknown>,
    weightSpecs: (artifacts.weightSpecs ?? []) as z.infer<typeof headerSchema>['weightSpecs'],
    plugins: [...plugins],
  };
  return frame(MAGIC, header, [new Uint8Array(weights)]);
}

/**
 * The artifacts and plugins {@link packModel} packed.
 *
 * @throws PackedFormatError when `bytes` are not a packed model, or their weights do not match the specs.
 */
export function unpackModel(bytes: Uint8Array): PackedModel {
  const { header, payload } = unframe(bytes, MAGIC, 'model');
  const parsed = headerSchema.safeParse(header);
  if (!parsed.success) throw new PackedFormatError('model', `its header is wrong (${parsed.error.message})`);
  const { modelTopology, weightSpecs, plugins } = parsed.data;
  const expected = weightSpecs.reduce(
    (sum, spec) => sum + spec.shape.reduce((n, d) => n * d, 1) * bytesPerElement(spec.dtype),
    0,
  );
  if (payload.length !== expected) {
    throw new PackedFormatError('model', `its weight specs need ${expected} bytes, not ${payload.length}`);
  }
  // A copy: tfjs keeps the buffer, and `bytes` may be a view into a larger one that is reused.
  const weightData = payload.slice().buffer;
  return {
    artifacts: { modelTopology, weightSpecs: weightSpecs as tf.io.WeightsManifestEntry[], weightData },
    plugins,
  };
}

/**
 * The model {@link packModel} packed, loaded with `tfl.loadLayersModel` after `importPlugin` ran for each of
 * its plugins (which registers their layer classes; a model of stock and built-in layers needs none).
 */
export async function loadPackedModel(
  bytes: Uint8Array,
  importPlugin: (specifier: string) => Promise<unknown> = (specifier) => import(specifier),
): Promise<tfl.LayersModel> {
  const { artifacts, plugins } = unpackModel(bytes);
  for (const plugin of plugins) await importPlugin(plugin);
  return tfl.loadLayersModel(tf.io.fromMemory(artifacts));
}

function bytesPerElement(dtype: string): number {
  if (dtype === 'float32' || dtype === 'int32') return 4;
  if (dtype === 'bool' || dtype === 'uint8') return 1;
  throw new PackedFormatError('model', `weight dtype '${dtype}' is not one tfjs saves`);
}
