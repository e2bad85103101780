import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeBatch, normalizeImages } from '@decompose/cifar10/browser';
import { fileSystem } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import writeFileAtomic from 'write-file-atomic';
import { classify, type Predictions, weightBytes } from './classify.js';
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
 * @throws Cifar10FormatError if `testBatch` is not a CIFAR-10 binary batch.
 */
export async function prepareSite(options: PrepareSiteOptions): Promise<NodePredictions> {
  const sampleCount = options.sampleCount ?? 32;
  if (!Number.isInteger(sampleCount) || sampleCount < 1) {
    throw new RangeError(`sampleCount must be a whole number ≥ 1, got ${sampleCount}`);
  }
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
