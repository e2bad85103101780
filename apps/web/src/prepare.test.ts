import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Cifar10FormatError, decodeBatch, normalizeImages } from '@decompose/cifar10/browser';
import { fileSystem, initEngine } from '@decompose/engine';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadLayersModel } from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classify, maxProbabilityDifference } from './classify.js';
import { type NodePredictions, prepareSite, SiteModelError } from './prepare.js';
import { IMAGES_PATH, MODEL_PATHS, MODEL_SLOTS, NODE_PREDICTIONS_PATH } from './site.js';
import { syntheticBatch, tinyClassifier } from './test-helpers.js';

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
  it('writes both models, the images and Node predictions that the saved models reproduce', async () => {
    const testBatch = join(work, 'test_batch.bin');
    const batch = syntheticBatch([0, 1, 2, 3, 4]);
    await writeFile(testBatch, batch);
    const models = { original: tinyClassifier(), compressed: tinyClassifier() };
    const dir = join(work, 'site');
    const result = await prepareSite({ dir, ...models, testBatch, sampleCount: 3 });

    expect(new Uint8Array(await readFile(join(dir, IMAGES_PATH)))).toEqual(batch);
    const written = JSON.parse(await readFile(join(dir, NODE_PREDICTIONS_PATH), 'utf8')) as NodePredictions;
    expect(written).toEqual(result);
    expect(written.sampleCount).toBe(3);
    expect(written.backend).toBe('wasm');
    const images = normalizeImages(decodeBatch(batch, { limit: 3 }).images);
    for (const slot of MODEL_SLOTS) {
      const reloaded = await loadLayersModel(fileSystem(join(dir, MODEL_PATHS[slot])));
      const again = await classify(reloaded, images);
      expect(again.classes).toEqual(written.models[slot].classes);
      expect(maxProbabilityDifference(again.probabilities, written.models[slot].probabilities)).toBeLessThan(
        1e-6,
      );
      const weightsFile = join(dir, dirname(MODEL_PATHS[slot]), 'weights.bin');
      expect(written.models[slot].weightBytes).toBe((await stat(weightsFile)).size);
      reloaded.dispose();
      models[slot].dispose();
    }
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
      problem: 'an input that is not a 32×32×3 image',
      compressed: () => denseClassifier([16, 16, 3], 10),
      message:
        /compressed model takes inputs of shape \[batch, 16, 16, 3\]; the page feeds CIFAR-10 images, \[batch, 32, 32, 3\]/,
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
