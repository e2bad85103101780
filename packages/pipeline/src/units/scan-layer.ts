import { imageShapeOf, normalizeImageSet } from '@decompose/cifar10';
import { measureLayerTimes } from '@decompose/core';
import { type BackendName, initEngine } from '@decompose/engine';
import { blobIdSchema, defineUnitKind } from '@decompose/jobs';
import { scanSensitivity, sensitivityTableSchema } from '@decompose/sensitivity';
import { train } from '@decompose/train';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { unpackImageSet } from '../image-sets.js';
import { loadPackedModel } from '../models.js';
import { loadPlugin, resolveStrategy } from '../strategies.js';

const table = sensitivityTableSchema.shape;

/** The calibration metric of a model: what the coordinator measured once on the trained model. */
const metricSchema = table.baseline;

/** The input of a {@link scanLayer} unit. */
export const scanLayerInputSchema = z.object({
  /** Blob id of the trained model, as `packModel` packed it (with the plugins its layers come from). */
  model: blobIdSchema,
  /** The strategy as the user named it (a built-in name, a package, or an absolute path): resolved again here. */
  strategy: z.string().min(1),
  /** The layer to decompose. */
  layer: z.string().min(1),
  /** The ratios to try, in order. */
  ratios: z.array(z.number()).min(1),
  /** Strategy options besides the ratio (each entry uses `{ ...baseOptions, ratio }`). */
  baseOptions: z.record(z.string(), z.json()).default({}),
  /** Seed handed to the strategy (and to the fine-tune). */
  seed: z.number().int(),
  /** Blob id of the calibration split, as `packImageSet` packed it. */
  calibration: blobIdSchema,
  /** The trained model's metric on the calibration split, measured once by the coordinator. */
  baseline: metricSchema,
  /** A short fine-tune of each decomposed model before it is measured (SGD, constant rate). */
  fineTune: z
    .object({
      steps: z.number().int().positive(),
      lr: z.number().positive(),
      batch: z.number().int().positive(),
      /** Blob id of the training images of the fine-tune (`packImageSet`). */
      data: blobIdSchema,
    })
    .optional(),
  /** Measure forward+backward time of the layer and of each replacement (ms). */
  timing: z.object({ batch: z.number().int().positive(), repeats: z.number().int().positive() }).optional(),
  /** The tfjs backend the coordinator measured on; the unit runs on the same one (numbers differ by backend). */
  backend: z.string().optional(),
});

/** The result of a {@link scanLayer} unit. */
export const scanLayerResultSchema = z.object({
  /** The strategy the specifier resolved to here, so the coordinator can check it resolved to the same. */
  strategy: table.strategy,
  /** The layer's cost (and measured time) before decomposition. */
  layer: table.layers.element,
  /** One entry per ratio, in the input's order. */
  entries: table.entries,
});

/** What a {@link scanLayer} unit reports after each ratio: the count and the entry just finished. */
export interface ScanLayerProgress {
  done: number;
  total: number;
  entry: z.output<typeof table.entries.element>;
}

/** Models and calibration tensors a worker keeps between units, by blob id, so it loads each once. */
class Kept<T> {
  private readonly items = new Map<string, Promise<T>>();
  constructor(
    private readonly capacity: number,
    private readonly dispose: (value: T) => void,
  ) {}

  get(id: string, load: () => Promise<T>): Promise<T> {
    let item = this.items.get(id);
    if (item === undefined) {
      item = load();
      // A failed load is not kept: the next unit tries again.
      item.catch(() => this.items.delete(id));
    } else this.items.delete(id);
    this.items.set(id, item); // most recently used last
    while (this.items.size > this.capacity) {
      const [oldest, value] = this.items.entries().next().value as [string, Promise<T>];
      this.items.delete(oldest);
      value.then(this.dispose, () => undefined);
    }
    return item;
  }

  clear(): void {
    for (const value of this.items.values()) value.then(this.dispose, () => undefined);
    this.items.clear();
  }
}

interface Calibration {
  images: tf.Tensor4D;
  labels: Uint8Array;
}

// Two of each: a comparison's arms scan one baseline model, and a worker rarely alternates between more.
const models = new Kept<tfl.LayersModel>(2, (model) => model.dispose());
const calibrations = new Kept<Calibration>(2, (set) => set.images.dispose());

let engine: { backend: string | undefined; ready: Promise<unknown> } | undefined;

/**
 * Initialises the engine once per thread (its kernels too, which the fine-tune needs), on the coordinator's
 * backend when it names one; again only when a unit asks for another backend.
 */
async function engineFor(backend: BackendName | undefined): Promise<void> {
  if (engine === undefined || (backend !== undefined && engine.backend !== backend)) {
    engine = { backend, ready: initEngine(backend === undefined ? {} : { backend }) };
  }
  await engine.ready;
}

/**
 * Frees the models and calibration tensors that {@link scanLayer} units kept in this thread. A coordinator that
 * ran the units in its own thread calls it when the scan is done (worker threads and processes free theirs
 * when they end).
 */
export function releaseScanLayerCache(): void {
  models.clear();
  calibrations.clear();
}

/**
 * `scan-layer`: one layer of a sensitivity scan, decomposed alone at each of its ratios and measured on the
 * calibration split, as `scanSensitivity` of `@decompose/sensitivity` does it. One unit holds all the ratios
 * of a layer because they share its frontier activations (the tensors in front of the part of the network
 * downstream of the layer, computed once with the trained model), the costly part of a calibration-only
 * entry. The trained model's metric comes in the input (`baseline`): the coordinator measures it once for every
 * layer. Reports `{ done, total, entry }` after each ratio.
 *
 * In a worker, the loaded model and calibration tensors are kept by blob id between units (the two most
 * recent of each, disposed when dropped), so a worker scanning many layers of one model loads it once.
 */
export const scanLayer = defineUnitKind({
  kind: 'scan-layer',
  version: '1',
  input: scanLayerInputSchema,
  result: scanLayerResultSchema,
  async run(input, { reportProgress, blobs }) {
    await engineFor(input.backend as BackendName | undefined);
    // Resolving a plugin strategy imports its module, which registers its layer classes: before the model loads.
    const { strategy } = await resolveStrategy(input.strategy, 'strategy');
    const model = await models.get(input.model, async () =>
      loadPackedModel(await blobs.get(input.model), loadPlugin),
    );
    const calibration = await calibrations.get(input.calibration, async () => {
      const set = unpackImageSet(await blobs.get(input.calibration));
      const images = tf.tensor4d(normalizeImageSet(set), [set.count, ...imageShapeOf(set)]);
      return { images, labels: set.labels };
    });
    const fineTune = input.fineTune;
    const fineTuneData = fineTune === undefined ? undefined : unpackImageSet(await blobs.get(fineTune.data));
    const timing = input.timing;
    const scanned = await scanSensitivity({
      model,
      strategy,
      layers: [input.layer],
      ratios: input.ratios,
      optionsForRatio: (ratio) => ({ ...input.baseOptions, ratio }),
      seed: input.seed,
      baseline: input.baseline,
      calibration: { images: calibration.images, labels: calibration.labels },
      ...(fineTune !== undefined && fineTuneData !== undefined
        ? {
            fineTune: {
              steps: fineTune.steps,
              run: async (m: tfl.LayersModel) => {
                await train({
                  model: m,
                  trainData: fineTuneData,
                  epochs: 1,
                  batchSize: fineTune.batch,
                  seed: input.seed,
                  schedule: { type: 'constant', lr: fineTune.lr },
                  optimizer: { momentum: 0.9, weightDecay: 5e-4 },
                });
              },
            },
          }
        : {}),
      ...(timing !== undefined
        ? {
            measureLayers: async (m: tfl.LayersModel, names: readonly string[]) =>
              (
                await measureLayerTimes(m, { layers: names, batch: timing.batch, repeats: timing.repeats })
              ).map((t) => t.forwardBackwardMs ?? t.forwardMs),
          }
        : {}),
      onProgress: ({ done, total, entry }) =>
        reportProgress({ done, total, entry: JSON.parse(JSON.stringify(entry)) }),
    });
    const layer = scanned.layers[0];
    if (layer === undefined) throw new Error(`The scan of '${input.layer}' returned no layer.`);
    return { strategy: scanned.strategy, layer, entries: scanned.entries };
  },
});
