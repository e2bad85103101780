import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBundledSubset, TEST_FILE, TRAIN_FILES } from '@decompose/cifar10';
import { CIFAR10_CLASS_NAMES, decodeBatch, type ImageSet } from '@decompose/cifar10/browser';
import { applyStrategy, exportStock } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import { svdStrategy } from '@decompose/svd';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type BrowserContext, chromium } from 'playwright-core';
import { build, type PreviewServer, preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxProbabilityDifference } from './classify.js';
import { createDemoModels } from './demo.js';
import { type NodePredictions, prepareSite } from './prepare.js';
import { type KernelSet, type PageResults, RESULTS_PROPERTY } from './results.js';
import { MODEL_PATHS, MODEL_SLOTS } from './site.js';
import { SMALL_CLASSES, SMALL_SHAPE, smallClassifier, smallImageSet } from './test-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
// Flags that keep Chromium off the (closed) network and out of first-run work; the profile is fresh.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Images the page classifies; Node's predictions cover the first SAMPLE_COUNT of them. */
const PAGE_IMAGES = 64;
const SAMPLE_COUNT = 32;
/** Training images for the demo model's class-mean head (so its predictions differ between images). */
const CALIBRATION_IMAGES = 128;
/** Largest difference of a probability between Node and the browser (both wasm; float error only). */
const PROBABILITY_TOLERANCE = 1e-4;
/** How long the page may take to load and classify (it takes a few seconds). */
const PAGE_TIMEOUT_MS = 45_000;

const webDir = fileURLToPath(new URL('..', import.meta.url));
const skipReason = `${CHROMIUM} is missing; install it with .ci/install-chromium.sh to run the browser test`;
if (!hasChromium) console.warn(`SKIPPED the page in headless Chromium: ${skipReason}`);

/** What one run of the page is given, and what it must show. */
interface PageCase {
  title: string;
  /** Fills `dataDir` with prepareSite and returns Node's predictions. */
  prepare: (dataDir: string, work: string) => Promise<NodePredictions>;
  /** The images the page classifies (it is asked for at most PAGE_IMAGES). */
  imageCount: number;
  imageShape: [number, number, number];
  classNames: readonly string[];
  /** BasisConv2D layers of the compressed model (undefined: none). */
  basisLayers: number | undefined;
  /** The page's `?kernels=` (undefined: left out, the page picks). */
  kernels: KernelSet | undefined;
}

/** The demo ResNet-20 pair on the bundled CIFAR-10 test batch, the compressed one exported or not. */
function demoCase(exported: boolean): PageCase {
  return {
    title: `the page in headless Chromium${exported ? ', compressed model exported to stock layers' : ''}`,
    imageCount: PAGE_IMAGES,
    imageShape: [32, 32, 3],
    classNames: CIFAR10_CLASS_NAMES,
    basisLayers: exported ? undefined : 6,
    // The exported model on the engine's kernels whatever the cores; the other one on the page's own pick.
    kernels: exported ? 'engine' : undefined,
    prepare: async (dataDir) => {
      const subset = findBundledSubset();
      const calibration = decodeBatch(await readFile(join(subset, TRAIN_FILES[0])), {
        limit: CALIBRATION_IMAGES,
      });
      const demo = createDemoModels({ seed: 7, calibration });
      const { original } = demo;
      const compressed = exported
        ? exportStock(demo.compressed, { foldBatchNorm: true }).model
        : demo.compressed;
      if (exported) demo.compressed.dispose();
      const testBatch = join(subset, TEST_FILE);
      return prepareWith(dataDir, original, compressed, { testBatch });
    },
  };
}

/** Test images of the small image folder (24 a class × 20 % held out). */
const SMALL_TEST_IMAGES = 3 * 8;

/** A 24×24, three-class stock model and its SVD-compressed copy on a synthetic image folder. */
const smallCase: PageCase = {
  title: "the page in headless Chromium, a 24×24 three-class model on an image folder, XNNPACK's kernels",
  imageCount: SMALL_TEST_IMAGES,
  imageShape: [...SMALL_SHAPE],
  classNames: SMALL_CLASSES,
  basisLayers: undefined,
  // The one case on XNNPACK's kernels, so both kernel sets are checked against Node's predictions.
  kernels: 'xnnpack',
  prepare: async (dataDir, work) => {
    const images = await smallImageSet(join(work, 'shapes'), { perClass: 40 });
    const original = smallClassifier(3);
    const compressed = applyStrategy(original, svdStrategy, {
      layers: 'conv2',
      options: { ratio: 0.5 },
    }).model;
    return prepareWith(dataDir, original, compressed, { images, imagesSource: 'synthetic shapes' });
  },
};

/** prepareSite on `dataDir`, then disposes both models. */
async function prepareWith(
  dataDir: string,
  original: LayersModel,
  compressed: LayersModel,
  images: { testBatch: string } | { images: ImageSet; imagesSource: string },
): Promise<NodePredictions> {
  try {
    return await prepareSite({ dir: dataDir, original, compressed, sampleCount: SAMPLE_COUNT, ...images });
  } finally {
    original.dispose();
    compressed.dispose();
  }
}

// The compressed model as compress writes it (BasisConv2D, SVD pairs), its stock export (decompose export:
// stock layers only, BatchNorm folded), which the page loads with nothing registered for it, and a model
// that is not CIFAR-10's at all, with its own image size, classes and normalisation.
for (const pageCase of [demoCase(false), demoCase(true), smallCase]) {
  const { title } = pageCase;
  describe.skipIf(!hasChromium)(hasChromium ? title : `${title} (SKIPPED: ${skipReason})`, () => {
    let work: string;
    let server: PreviewServer | undefined;
    let context: BrowserContext | undefined;
    let node: NodePredictions;
    let results: PageResults;
    let gallery: string[];
    const pageErrors: string[] = [];

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'decompose-web-'));
      const dataDir = join(work, 'data');
      const siteDir = join(work, 'site');
      await initEngine();
      node = await pageCase.prepare(dataDir, work);

      const configFile = join(webDir, 'vite.config.ts');
      await build({ configFile, publicDir: dataDir, logLevel: 'error', build: { outDir: siteDir } });
      server = await preview({
        configFile,
        logLevel: 'error',
        build: { outDir: siteDir },
        preview: { port: 0 },
      });
      const url = server.resolvedUrls?.local[0];
      if (url === undefined) throw new Error('vite preview reported no local URL');

      context = await chromium.launchPersistentContext(join(work, 'profile'), {
        executablePath: CHROMIUM,
        args: CHROMIUM_ARGS,
        viewport: { width: 1000, height: 900 },
      });
      const page = await context.newPage();
      page.on('pageerror', (error) => pageErrors.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error') pageErrors.push(message.text());
      });
      const kernels = pageCase.kernels === undefined ? '' : `&kernels=${pageCase.kernels}`;
      await page.goto(`${url}?limit=${PAGE_IMAGES}${kernels}`);
      const finished = page.waitForFunction(
        (property) => {
          const current = (window as unknown as Record<string, PageResults | undefined>)[property];
          return current !== undefined && current.status !== 'running';
        },
        RESULTS_PROPERTY,
        { timeout: PAGE_TIMEOUT_MS },
      );
      await finished.catch(async (error: unknown) => {
        const status = await page.locator('#status').textContent();
        throw new Error(
          `The page did not finish (last status: ${status}; errors: ${pageErrors.join('; ')})`,
          {
            cause: error,
          },
        );
      });
      results = await page.evaluate(
        (property) => (window as unknown as Record<string, PageResults>)[property]!,
        RESULTS_PROPERTY,
      );
      gallery = await page.locator('#gallery figcaption strong').allTextContents();
      await page.screenshot({
        path: process.env.DECOMPOSE_WEB_SCREENSHOT ?? join(work, 'page.png'),
        fullPage: true,
      });
    });

    afterAll(async () => {
      await context?.close();
      await server?.close();
      if (work !== undefined) await rm(work, { recursive: true, force: true });
    });

    it('loads both models with the stock loadLayersModel and classifies on the wasm backend', () => {
      expect(results, `page errors: ${pageErrors.join('\n')}`).toMatchObject({ status: 'done' });
      if (results.status !== 'done') return;
      expect(results.backend).toBe('wasm');
      // Served cross-origin isolated: the browser gives the page SharedArrayBuffer, which the threaded build needs.
      expect(results.crossOriginIsolated).toBe(true);
      // Left out, the page picks the engine's kernels on up to 2 cores, XNNPACK's on more.
      const kernels = pageCase.kernels ?? (availableParallelism() <= 2 ? 'engine' : 'xnnpack');
      if (kernels === 'xnnpack') {
        expect(results).toMatchObject({ kernels, engineSimd: null, threads: availableParallelism() });
      } else {
        // On one thread of the threaded build, on its shared memory (Chromium has relaxed SIMD).
        expect(results).toMatchObject({
          kernels,
          threads: 1,
          engineSimd: { build: 'relaxed', sharedMemory: true },
        });
      }
      for (const model of results.models) expect(model.msPerImageBatch1).toBeGreaterThan(0);
      expect(results.imageCount).toBe(pageCase.imageCount);
      const [original, compressed] = results.models;
      expect(original?.layerClasses.BasisConv2D).toBeUndefined();
      expect(compressed?.layerClasses.BasisConv2D).toBe(pageCase.basisLayers);
      // Both run on the eval path: prepareSite saved them with every BatchNorm folded.
      for (const model of [original, compressed])
        expect(model?.layerClasses.BatchNormalization).toBeUndefined();
      expect(compressed!.weightBytes).toBeLessThan(original!.weightBytes);
      expect(pageErrors).toEqual([]);
      if (pageCase.classNames === CIFAR10_CLASS_NAMES) {
        // The class-mean head makes predictions depend on the image, so comparing classes means something.
        expect(new Set(node.models.original.classes).size).toBeGreaterThan(2);
      }
    });

    it("reads the images' geometry and class names from images.json and labels the gallery with them", () => {
      if (results.status !== 'done') throw new Error(`the page did not finish: ${JSON.stringify(results)}`);
      expect(results.imageShape).toEqual(pageCase.imageShape);
      expect(results.classNames).toEqual([...pageCase.classNames]);
      expect(results.models[0]!.probabilities[0]).toHaveLength(pageCase.classNames.length);
      expect(gallery.length).toBe(Math.min(10, pageCase.imageCount));
      for (const label of gallery) expect(pageCase.classNames).toContain(label);
    });

    it.each(MODEL_SLOTS)('predicts what Node predicts with the %s model', (slot) => {
      if (results.status !== 'done') throw new Error(`the page did not finish: ${JSON.stringify(results)}`);
      const inPage = results.models.find((m) => m.slot === slot)!;
      const inNode = node.models[slot];
      expect(inPage.classes.slice(0, SAMPLE_COUNT)).toEqual(inNode.classes);
      expect(maxProbabilityDifference(inNode.probabilities, inPage.probabilities)).toBeLessThanOrEqual(
        PROBABILITY_TOLERANCE,
      );
    });

    it.each(MODEL_SLOTS)('reports the size of the %s weights file', async (slot) => {
      if (results.status !== 'done') throw new Error(`the page did not finish: ${JSON.stringify(results)}`);
      const weightsFile = join(work, 'site', dirname(MODEL_PATHS[slot]), 'weights.bin');
      const inPage = results.models.find((m) => m.slot === slot)!;
      expect(inPage.weightBytes).toBe((await stat(weightsFile)).size);
      expect(inPage.weightBytes).toBe(node.models[slot].weightBytes);
    });
  });
}
