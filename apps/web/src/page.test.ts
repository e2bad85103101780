import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBundledSubset, TEST_FILE, TRAIN_FILES } from '@decompose/cifar10';
import { decodeBatch } from '@decompose/cifar10/browser';
import { exportStock } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import { type BrowserContext, chromium } from 'playwright-core';
import { build, type PreviewServer, preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxProbabilityDifference } from './classify.js';
import { createDemoModels } from './demo.js';
import { type NodePredictions, prepareSite } from './prepare.js';
import { type PageResults, RESULTS_PROPERTY } from './results.js';
import { MODEL_PATHS, MODEL_SLOTS } from './site.js';

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

// The compressed model as compress writes it (BasisConv2D, SVD pairs), and its stock export (decompose export:
// stock layers only, BatchNorm folded), which the page loads with nothing registered for it.
for (const exported of [false, true]) {
  const title = `the page in headless Chromium${exported ? ', compressed model exported to stock layers' : ''}`;
  describe.skipIf(!hasChromium)(hasChromium ? title : `${title} (SKIPPED: ${skipReason})`, () => {
    let work: string;
    let server: PreviewServer | undefined;
    let context: BrowserContext | undefined;
    let node: NodePredictions;
    let results: PageResults;
    const pageErrors: string[] = [];

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'decompose-web-'));
      const dataDir = join(work, 'data');
      const siteDir = join(work, 'site');
      await initEngine();
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
      node = await prepareSite({ dir: dataDir, original, compressed, testBatch, sampleCount: SAMPLE_COUNT });
      original.dispose();
      compressed.dispose();

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
      await page.goto(`${url}?limit=${PAGE_IMAGES}`);
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
      expect(results.imageCount).toBe(PAGE_IMAGES);
      const [original, compressed] = results.models;
      expect(original?.layerClasses.BasisConv2D).toBeUndefined();
      expect(compressed?.layerClasses.BasisConv2D).toBe(exported ? undefined : 6);
      if (exported) expect(compressed?.layerClasses.BatchNormalization).toBeUndefined();
      expect(compressed!.weightBytes).toBeLessThan(original!.weightBytes);
      expect(pageErrors).toEqual([]);
      // The class-mean head makes predictions depend on the image, so comparing classes means something.
      expect(new Set(node.models.original.classes).size).toBeGreaterThan(2);
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
