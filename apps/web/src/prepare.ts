import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHANNELS, decodeBatch, IMAGE_SIZE, normalizeImages } from '@decompose/cifar10/browser';
import { fileSystem } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import writeFileAtomic from 'write-file-atomic';
import { classify, type Predictions, weightBytes } from './classify.js';
import { WebError } from './errors.js';
import { IMAGES_PATH, MODEL_PATHS, MODEL_SLOTS, type ModelSlot, NODE_PREDICTIONS_PATH } from './site.js';

/** What {@link prepareSite} needs. */
export interface PrepareSiteOptions {
  /** The folder to fill (created if missing); serve it as the page's static root. */
  dir: string;
  original: LayersModel;
  compressed: LayersModel;
  /** Path of a CIFAR-10 `test_batch.bin` (official binary layout), copied into the folder. */
  testBatch: string;
  /** How many of the first images Node classifies for the comparison (default 32). */
  sampleCount?: number;
}

/** Thrown by {@link prepareSite} when a model is not a CIFAR-10 classifier the page can run. */
export class SiteModelError extends WebError {
  override readonly name = 'SiteModelError';
}

/** The shape the page feeds models: batches of 32×32 RGB images. */
const PAGE_INPUT_SHAPE = [null, IMAGE_SIZE, IMAGE_SIZE, CHANNELS];

function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? 'batch' : d)).join(', ')}]`;
}

/** Checks that both models take the page's images and give as many logits as each other. */
function checkModels(models: Record<ModelSlot, LayersModel>): void {
  const outputs = MODEL_SLOTS.map((slot) => {
    const model = models[slot];
    const [input, ...moreInputs] = model.inputs;
    if (input === undefined || moreInputs.length > 0 || model.outputs.length !== 1) {
      throw new SiteModelError(
        `The ${slot} model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; the page needs one image input and one output of logits.`,
      );
    }
    if (shapeText(input.shape) !== shapeText(PAGE_INPUT_SHAPE)) {
      throw new SiteModelError(
        `The ${slot} model takes inputs of shape ${shapeText(input.shape)}; the page feeds CIFAR-10 images, ${shapeText(PAGE_INPUT_SHAPE)}.`,
      );
    }
    return shapeText(model.outputs[0]!.shape);
  });
  if (outputs[0] !== outputs[1]) {
    throw new SiteModelError(
      `The models give outputs of different shapes (original ${outputs[0]}, compressed ${outputs[1]}); pass a compressed copy of the original model.`,
    );
  }
}

/** `node-predictions.json`: what Node predicted for the first images, on which backend. */
export interface NodePredictions {
  backend: string;
  sampleCount: number;
  models: Record<ModelSlot, Predictions & { weightBytes: number }>;
}

/**
 * Fills `dir` with what the page loads: both models saved as `model.json` + `weights.bin` (the layout
 * `tf.loadLayersModel` reads over HTTP), the test images, and Node's predictions for the first
 * `sampleCount` images on the active backend (call `initEngine()` first). Every file is written atomically.
 *
 * @throws SiteModelError if a model does not take 32×32×3 images, or the two give outputs of different shapes;
 *   Cifar10FormatError if `testBatch` is not a CIFAR-10 binary batch. Nothing is written then.
 */
export async function prepareSite(options: PrepareSiteOptions): Promise<NodePredictions> {
  const sampleCount = options.sampleCount ?? 32;
  if (!Number.isInteger(sampleCount) || sampleCount < 1) {
    throw new RangeError(`sampleCount must be a whole number ≥ 1, got ${sampleCount}`);
  }
  checkModels(options);
  const batch = await readFile(options.testBatch);
  const samples = decodeBatch(batch, { limit: sampleCount });
  const images = normalizeImages(samples.images);
  await mkdir(options.dir, { recursive: true });
  await writeFileAtomic(join(options.dir, IMAGES_PATH), batch);
  const models = {} as NodePredictions['models'];
  for (const slot of MODEL_SLOTS) {
    const model = options[slot];
    await model.save(fileSystem(join(options.dir, MODEL_PATHS[slot])));
    models[slot] = { ...(await classify(model, images)), weightBytes: weightBytes(model) };
  }
  const result: NodePredictions = { backend: tf.getBackend(), sampleCount: samples.count, models };
  await writeFileAtomic(join(options.dir, NODE_PREDICTIONS_PATH), `${JSON.stringify(result)}\n`);
  return result;
}
