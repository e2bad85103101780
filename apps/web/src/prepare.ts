import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  classNamesOf,
  decodeBatch,
  type ImageSet,
  imageShapeOf,
  normalizeImageSet,
} from '@decompose/cifar10/browser';
import { inferenceModel } from '@decompose/core';
import { fileSystem } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import writeFileAtomic from 'write-file-atomic';
import { classify, type Predictions, weightBytes } from './classify.js';
import { WebError } from './errors.js';
import { firstImages, shapeText, writeSiteImages } from './images-file.js';
import {
  IMAGES_MANIFEST_PATH,
  IMAGES_PATH,
  MODEL_PATHS,
  MODEL_SLOTS,
  type ModelSlot,
  NODE_PREDICTIONS_PATH,
} from './site.js';

interface PrepareSiteCommon {
  /** The folder to fill (created if missing); serve it as the page's static root. */
  dir: string;
  original: LayersModel;
  compressed: LayersModel;
  /** How many of the first images Node classifies for the comparison (default 32). */
  sampleCount?: number;
}

/**
 * What {@link prepareSite} needs: the two models and the test images, either as an image set of any size and
 * class count (`images`, e.g. the test set of an image folder read by `@decompose/images`, carrying its
 * shape, class names and normalisation) or as a CIFAR-10 binary batch file (`testBatch`).
 */
export type PrepareSiteOptions = PrepareSiteCommon &
  (
    | {
        /** The test images, resized to the models' input size; their `mean`/`std` normalise them. */
        images: ImageSet;
        /** Names the images on the page and in errors (default `the test images`). */
        imagesSource?: string;
        testBatch?: never;
      }
    | {
        /** Path of a CIFAR-10 `test_batch.bin` (official binary layout): CIFAR-10's classes and normalisation. */
        testBatch: string;
        images?: never;
        imagesSource?: never;
      }
  );

/** Thrown by {@link prepareSite} when a model cannot classify the test images the page is given. */
export class SiteModelError extends WebError {
  override readonly name = 'SiteModelError';
}

/**
 * Checks that both models take images of the set's shape and give one logit per class of it (the original's
 * and the compressed model's outputs first against each other: a mismatch there is the wrong pair of models).
 */
function checkModels(models: Record<ModelSlot, LayersModel>, images: ImageSet, source: string): void {
  const imageShape = shapeText([null, ...imageShapeOf(images)]);
  const classes = classNamesOf(images).length;
  const outputs = MODEL_SLOTS.map((slot) => {
    const model = models[slot];
    const [input, ...moreInputs] = model.inputs;
    if (input === undefined || moreInputs.length > 0 || model.outputs.length !== 1) {
      throw new SiteModelError(
        `The ${slot} model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; the page needs one image input and one output of logits.`,
      );
    }
    if (shapeText(input.shape) !== imageShape) {
      const [, height, width] = input.shape;
      throw new SiteModelError(
        `The ${slot} model takes inputs of shape ${shapeText(input.shape)}, but the page's test images (${source}) are ${imageShape}; ` +
          `give it images of the model's size (decompose web: --data <image folder> --input-size ${height ?? 'H'}x${width ?? 'W'}).`,
      );
    }
    return model.outputs[0]!.shape;
  });
  const [original, compressed] = outputs.map(shapeText);
  if (original !== compressed) {
    throw new SiteModelError(
      `The models give outputs of different shapes (original ${original}, compressed ${compressed}); pass a compressed copy of the original model.`,
    );
  }
  if (outputs[0]!.length !== 2 || outputs[0]![1] !== classes) {
    throw new SiteModelError(
      `The models give outputs of shape ${original}, but the page's test images (${source}) have ${classes} classes, [batch, ${classes}]; ` +
        'give it images of the classes the models were trained on (decompose web: --data <image folder> with one subfolder per class).',
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
 * Fills `dir` with what the page loads: both models on the eval path (core's `inferenceModel`: BatchNorms folded
 * into the layers before them, activations fused; the same classes, so the page loads them as before) saved as
 * `model.json` + `weights.bin` (the layout `tf.loadLayersModel` reads over HTTP), the test images as `images.bin` + `images.json` (see
 * `SiteImagesManifest`), and Node's predictions for the first `sampleCount` images on the active backend
 * (call `initEngine()` first). Every file is written atomically, and only once every check has passed.
 *
 * @throws SiteModelError if a model does not take images of the test images' shape, the two give outputs of
 *   different shapes, or their classes are not the images'; SiteImagesError for an inconsistent image set;
 *   Cifar10FormatError if `testBatch` is not a CIFAR-10 binary batch. Nothing is written then.
 */
export async function prepareSite(options: PrepareSiteOptions): Promise<NodePredictions> {
  const sampleCount = options.sampleCount ?? 32;
  if (!Number.isInteger(sampleCount) || sampleCount < 1) {
    throw new RangeError(`sampleCount must be a whole number ≥ 1, got ${sampleCount}`);
  }
  let images: ImageSet;
  let source: string;
  if (options.testBatch !== undefined) {
    // A CIFAR-10 set gives no shape, class names or normalisation: CIFAR-10's, which its training uses.
    images = decodeBatch(await readFile(options.testBatch), { source: options.testBatch });
    source = `CIFAR-10 ${options.testBatch}`;
  } else {
    images = options.images;
    source = options.imagesSource ?? 'the test images';
  }
  const site = writeSiteImages(images, source, IMAGES_PATH);
  checkModels(options, images, source);
  const input = normalizeImageSet(firstImages(images, sampleCount));
  const shape = imageShapeOf(images);
  await mkdir(options.dir, { recursive: true });
  await writeFileAtomic(
    join(options.dir, IMAGES_PATH),
    Buffer.from(site.pixels.buffer, site.pixels.byteOffset, site.pixels.byteLength),
  );
  await writeFileAtomic(join(options.dir, IMAGES_MANIFEST_PATH), `${JSON.stringify(site.manifest)}\n`);
  const models = {} as NodePredictions['models'];
  for (const slot of MODEL_SLOTS) {
    // The page runs each model on the product's eval path, as `decompose eval` and the leaderboard measure it.
    const { model } = inferenceModel(options[slot]);
    try {
      await model.save(fileSystem(join(options.dir, MODEL_PATHS[slot])));
      models[slot] = { ...(await classify(model, input, shape)), weightBytes: weightBytes(model) };
    } finally {
      model.dispose();
    }
  }
  const result: NodePredictions = {
    backend: tf.getBackend(),
    sampleCount: Math.min(sampleCount, images.count),
    models,
  };
  await writeFileAtomic(join(options.dir, NODE_PREDICTIONS_PATH), `${JSON.stringify(result)}\n`);
  return result;
}
