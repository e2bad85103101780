import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  CIFAR10_CLASS_NAMES,
  CIFAR10_MEAN,
  CIFAR10_STD,
  Cifar10FormatError,
  decodeBatch,
  normalizeImageSet,
  normalizeImages,
} from '@decompose/cifar10/browser';
import { fileSystem, initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classify, maxProbabilityDifference } from './classify.js';
import { firstImages, readSiteImages, SiteImagesError, type SiteImagesManifest } from './images-file.js';
import { type NodePredictions, type PrepareSiteOptions, prepareSite, SiteModelError } from './prepare.js';
import {
  IMAGES_MANIFEST_PATH,
  IMAGES_PATH,
  MODEL_PATHS,
  MODEL_SLOTS,
  NODE_PREDICTIONS_PATH,
} from './site.js';
import { SMALL_CLASSES, SMALL_SHAPE, smallImageSet, syntheticBatch, tinyClassifier } from './test-helpers.js';

/** The manifest and pixels of a prepared folder, checked as the page checks them. */
async function readPrepared(dir: string) {
  const manifest = JSON.parse(await readFile(join(dir, IMAGES_MANIFEST_PATH), 'utf8')) as SiteImagesManifest;
  const pixels = new Uint8Array(await readFile(join(dir, manifest.file)));
  return { manifest, images: readSiteImages(manifest, pixels, IMAGES_MANIFEST_PATH) };
}

/**
 * Reloads each saved model and checks that it reproduces Node's predictions on the prepared images (the
 * first `sampleCount`) and that the reported weight bytes are the weights file's size; disposes `models`.
 */
async function expectReproduced(
  dir: string,
  models: Pick<PrepareSiteOptions, 'original' | 'compressed'>,
  written: NodePredictions,
) {
  const { images } = await readPrepared(dir);
  const input = normalizeImageSet(firstImages(images, written.sampleCount));
  for (const slot of MODEL_SLOTS) {
    const reloaded = await loadLayersModel(fileSystem(join(dir, MODEL_PATHS[slot])));
    const again = await classify(reloaded, input, images.shape!);
    expect(again.classes).toEqual(written.models[slot].classes);
    expect(maxProbabilityDifference(again.probabilities, written.models[slot].probabilities)).toBeLessThan(
      1e-6,
    );
    const weightsFile = join(dir, dirname(MODEL_PATHS[slot]), 'weights.bin');
    expect(written.models[slot].weightBytes).toBe((await stat(weightsFile)).size);
    reloaded.dispose();
    models[slot].dispose();
  }
}

let work: string;
beforeAll(async () => {
  await initEngine();
});
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'decompose-web-prepare-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('prepareSite', () => {
  it('writes both models, a CIFAR-10 batch as images.bin + images.json and Node predictions the saved models reproduce', async () => {
    const testBatch = join(work, 'test_batch.bin');
    const batch = syntheticBatch([0, 1, 2, 3, 4]);
    await writeFile(testBatch, batch);
    const models = { original: tinyClassifier(), compressed: tinyClassifier() };
    const dir = join(work, 'site');
    const result = await prepareSite({ dir, ...models, testBatch, sampleCount: 3 });

    const decoded = decodeBatch(batch);
    const { manifest, images } = await readPrepared(dir);
    expect(manifest).toEqual({
      version: 1,
      file: IMAGES_PATH,
      source: `CIFAR-10 ${testBatch}`,
      count: 5,
      height: 32,
      width: 32,
      channels: 3,
      labels: [0, 1, 2, 3, 4],
      classNames: [...CIFAR10_CLASS_NAMES],
      mean: [...CIFAR10_MEAN],
      std: [...CIFAR10_STD],
    });
    // NHWC pixels as decoded from the batch, un-normalised: the page normalises them as CIFAR training does.
    expect(images.images).toEqual(decoded.images);
    expect(normalizeImageSet(images)).toEqual(normalizeImages(decoded.images));
    const written = JSON.parse(await readFile(join(dir, NODE_PREDICTIONS_PATH), 'utf8')) as NodePredictions;
    expect(written).toEqual(result);
    expect(written.sampleCount).toBe(3);
    expect(written.backend).toBe('wasm');
    await expectReproduced(dir, models, written);
  });

  it('writes an image folder of any size and classes with its class names and normalisation', async () => {
    const set = await smallImageSet(join(work, 'shapes'), { mean: [0.4, 0.5, 0.6], std: [0.2, 0.3, 0.4] });
    const models = { original: tinyClassifier(SMALL_SHAPE, 3), compressed: tinyClassifier(SMALL_SHAPE, 3) };
    const dir = join(work, 'site');
    const before = tf.memory().numTensors;
    const result = await prepareSite({
      dir,
      ...models,
      images: set,
      imagesSource: 'shapes',
      sampleCount: 100,
    });
    expect(tf.memory().numTensors).toBe(before);

    const { manifest, images } = await readPrepared(dir);
    expect(manifest).toMatchObject({
      source: 'shapes',
      count: set.count,
      height: 24,
      width: 24,
      channels: 3,
      labels: Array.from(set.labels),
      classNames: [...SMALL_CLASSES],
      mean: [0.4, 0.5, 0.6],
      std: [0.2, 0.3, 0.4],
    });
    expect(images.images).toEqual(set.images);
    expect((await stat(join(dir, IMAGES_PATH))).size).toBe(set.count * 24 * 24 * 3);
    expect(result.sampleCount).toBe(set.count); // all of them: fewer than sampleCount
    expect(result.models.original.probabilities[0]).toHaveLength(3);
    await expectReproduced(dir, models, result);
  });

  it('rejects a file that is not a CIFAR-10 batch before writing anything', async () => {
    const testBatch = join(work, 'not-a-batch.bin');
    await writeFile(testBatch, 'hello');
    const model = tinyClassifier();
    const dir = join(work, 'site');
    await expect(prepareSite({ dir, original: model, compressed: model, testBatch })).rejects.toThrow(
      Cifar10FormatError,
    );
    await expect(stat(dir)).rejects.toThrow();
    model.dispose();
  });

  it.each([
    {
      problem: 'CIFAR-10-sized models',
      models: () => [tinyClassifier(), tinyClassifier()],
      message:
        /original model takes inputs of shape \[batch, 32, 32, 3\], but the page's test images \(shapes\) are \[batch, 24, 24, 3\]; .*--input-size 32x32/,
    },
    {
      problem: 'models of five classes',
      models: () => [tinyClassifier(SMALL_SHAPE, 5), tinyClassifier(SMALL_SHAPE, 5)],
      message:
        /models give outputs of shape \[batch, 5\], but the page's test images \(shapes\) have 3 classes, \[batch, 3\]; give it images of the classes the models were trained on/,
    },
  ])(
    'rejects $problem for 24×24 images of 3 classes before writing anything',
    async ({ models, message }) => {
      const images = await smallImageSet(join(work, 'shapes'), { perClass: 5 });
      const [original, compressed] = models();
      const dir = join(work, 'site');
      const error = await prepareSite({
        dir,
        original: original!,
        compressed: compressed!,
        images,
        imagesSource: 'shapes',
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SiteModelError);
      expect((error as Error).message).toMatch(message);
      await expect(stat(dir)).rejects.toThrow();
      original!.dispose();
      compressed!.dispose();
    },
  );

  it('rejects an image set whose labels go beyond its class names before writing anything', async () => {
    const set = await smallImageSet(join(work, 'shapes'), { perClass: 5 });
    const images = { ...set, classNames: ['circle', 'square'] };
    const model = tinyClassifier(SMALL_SHAPE, 2);
    const dir = join(work, 'site');
    const error = await prepareSite({
      dir,
      original: model,
      compressed: model,
      images,
      imagesSource: 'shapes',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SiteImagesError);
    expect((error as Error).message).toMatch(
      /^The test images shapes give image \d+ the label 2, but there are 2 classes\.$/,
    );
    await expect(stat(dir)).rejects.toThrow();
    model.dispose();
  });

  it.each([
    {
      problem: 'an input that is not a 32×32×3 image',
      compressed: () => denseClassifier([16, 16, 3], 10),
      message:
        /compressed model takes inputs of shape \[batch, 16, 16, 3\], but the page's test images \(CIFAR-10 .*test_batch\.bin\) are \[batch, 32, 32, 3\]; give it images of the model's size \(decompose web: --data <image folder> --input-size 16x16\)/,
    },
    {
      problem: 'a different number of classes',
      compressed: () => denseClassifier([32, 32, 3], 5),
      message: /outputs of different shapes \(original \[batch, 10\], compressed \[batch, 5\]\)/,
    },
  ])('rejects a compressed model with $problem before writing anything', async ({ compressed, message }) => {
    const testBatch = join(work, 'test_batch.bin');
    await writeFile(testBatch, syntheticBatch([0, 1]));
    const models = { original: tinyClassifier(), compressed: compressed() };
    const dir = join(work, 'site');
    const error = await prepareSite({ dir, ...models, testBatch }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SiteModelError);
    expect((error as Error).message).toMatch(message);
    await expect(stat(dir)).rejects.toThrow();
    models.original.dispose();
    models.compressed.dispose();
  });
});

/** A flatten + dense classifier of `inputShape` images into `classes` logits. */
function denseClassifier(inputShape: number[], classes: number): tfl.LayersModel {
  const input = tfl.input({ shape: inputShape });
  const logits = tfl.layers.dense({ units: classes }).apply(tfl.layers.flatten().apply(input));
  return tfl.model({ inputs: input, outputs: logits as tfl.SymbolicTensor });
}
