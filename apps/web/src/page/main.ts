// Registers the custom layer classes (BasisConv2D) that compressed models may use.
import '../page-layers.js';
import {
  classNamesOf,
  type ImageSet,
  imageShapeOf,
  normalizeImageSet,
  valuesPerImage,
} from '@decompose/cifar10/browser';
import { installWasmEngineKernels } from '@decompose/engine/browser';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import plainWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import simdWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import threadedSimdWasm from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import * as tf from '@tensorflow/tfjs-core';
import { type LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
import { batchAt, classifyBatch, countImages, PREDICT_BATCH, weightBytes } from '../classify.js';
import { firstImages, readSiteImages } from '../images-file.js';
import {
  KERNEL_SETS,
  type KernelSet,
  type ModelResult,
  type PageResults,
  RESULTS_PROPERTY,
} from '../results.js';
import { IMAGES_MANIFEST_PATH, MODEL_PATHS, MODEL_SLOTS, type ModelSlot } from '../site.js';
import { renderGallery, renderStatus, renderSummary } from './render.js';

function report(results: PageResults): void {
  (window as unknown as Record<string, PageResults>)[RESULTS_PROPERTY] = results;
}

function step(text: string): void {
  report({ status: 'running', step: text });
  renderStatus(text);
}

function layerClasses(model: LayersModel): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const layer of model.layers) {
    const name = layer.getClassName();
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`Could not fetch the test images ${url}: HTTP ${response.status}`);
  return response;
}

/** The manifest at `url` (`images.json`) and the pixel file it names, checked against each other. */
async function fetchImages(url: string, limit: number): Promise<{ images: ImageSet; source: string }> {
  const manifest: unknown = await (await fetchOk(url)).json();
  const file = (manifest as { file?: unknown }).file;
  if (typeof file !== 'string') throw new Error(`The test images ${url} name no pixel file (file)`);
  // The pixel file is relative to the manifest, so `?images=` may point anywhere.
  const pixelsUrl = new URL(file, new URL(url, window.location.href)).href;
  const pixels = new Uint8Array(await (await fetchOk(pixelsUrl)).arrayBuffer());
  const images = firstImages(readSiteImages(manifest, pixels, url), limit);
  const source = (manifest as { source?: unknown }).source;
  return { images, source: typeof source === 'string' ? source : url };
}

interface LoadedModel {
  slot: ModelSlot;
  url: string;
  model: LayersModel;
}

/** Single-image predicts timed per model (after the batches, which warmed both up). */
const SINGLE_IMAGE_CALLS = 16;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Classifies the images with every model, alternating models batch by batch so that whatever else the
 * machine does slows them alike; time per image is the median over batches, after one warm-up batch each
 * (the first predict compiles and allocates).
 */
async function compare(loaded: readonly LoadedModel[], images: ImageSet): Promise<ModelResult[]> {
  const input = normalizeImageSet(images);
  const shape = imageShapeOf(images);
  for (const { model } of loaded) await classifyBatch(model, batchAt(input, 0, shape), shape);
  const runs = loaded.map(() => ({
    classes: [] as number[],
    probabilities: [] as number[][],
    ms: [] as number[],
  }));
  for (let start = 0; start < images.count; start += PREDICT_BATCH) {
    const batch = batchAt(input, start, shape);
    const size = countImages(batch, shape);
    for (const [index, { model }] of loaded.entries()) {
      const began = performance.now();
      const { classes, probabilities } = await classifyBatch(model, batch, shape);
      const run = runs[index]!;
      run.ms.push((performance.now() - began) / size);
      run.classes.push(...classes);
      run.probabilities.push(...probabilities);
    }
  }
  // Latency: one image per predict, as an app classifying what it is shown calls it.
  const single = loaded.map(() => [] as number[]);
  for (let start = 0; start < Math.min(images.count, SINGLE_IMAGE_CALLS); start++) {
    const image = input.subarray(start * valuesPerImage(images), (start + 1) * valuesPerImage(images));
    for (const [index, { model }] of loaded.entries()) {
      const began = performance.now();
      await classifyBatch(model, image, shape);
      single[index]!.push(performance.now() - began);
    }
  }
  return loaded.map(({ slot, url, model }, index) => {
    const { classes, probabilities, ms } = runs[index]!;
    const correct = classes.filter((c, i) => c === images.labels[i]).length;
    return {
      slot,
      url,
      params: model.countParams(),
      weightBytes: weightBytes(model),
      layerClasses: layerClasses(model),
      accuracy: correct / images.count,
      msPerImage: median(ms),
      msPerImageBatch1: median(single[index]!),
      classes,
      probabilities,
    };
  });
}

/**
 * Starts tfjs's wasm backend on `threads` threads. tfjs caps its pool at half of `navigator.hardwareConcurrency`
 * (it assumes two hyperthreads per core), so on a 2-vCPU machine it would run 1 thread whatever
 * `setThreadsCount` asks: while the backend starts, the page reports twice the count it wants.
 */
async function startWasmBackend(threads: number): Promise<boolean> {
  setThreadsCount(threads);
  Object.defineProperty(navigator, 'hardwareConcurrency', { configurable: true, get: () => 2 * threads });
  try {
    return await tf.setBackend('wasm');
  } finally {
    // The own property goes; Navigator.prototype's getter answers again.
    Reflect.deleteProperty(navigator, 'hardwareConcurrency');
  }
}

/**
 * The kernels the page runs unless `?kernels=` says otherwise: the engine's where they beat XNNPACK's. They run on
 * the page's thread, at 2.0–2.2× XNNPACK's speed on one thread and 1.1–1.3× XNNPACK's on two (ResNet-20 at batch
 * 32 in headless Chromium, bench/results/web.json); XNNPACK's spread over the pool (1.6–1.8× from 1 thread to 2),
 * so from 3 threads (an extrapolation) they would win.
 */
function defaultKernels(cores: number): KernelSet {
  return cores <= 2 ? 'engine' : 'xnnpack';
}

function isKernelSet(value: string): value is KernelSet {
  return (KERNEL_SETS as readonly string[]).includes(value);
}

async function run(): Promise<void> {
  const query = new URLSearchParams(window.location.search);
  const limit = Number(query.get('limit') ?? Number.POSITIVE_INFINITY);
  step('Starting the wasm backend…');
  const kernels = query.get('kernels') ?? defaultKernels(navigator.hardwareConcurrency);
  if (!isKernelSet(kernels)) {
    throw new Error(`?kernels=${kernels} is not one of ${KERNEL_SETS.join(', ')} (leave it out to pick)`);
  }
  // Cross-origin isolated (serveSite and vite send COOP/COEP), the backend runs its threaded build: XNNPACK's
  // kernels on every core, the engine's on one (a pool only adds hand-offs to the kernels they leave to XNNPACK:
  // 1.26 against 1.22 ms per image, and up to 1.5× at batch 1), unless `?threads=N` says otherwise.
  const threads = query.get('threads');
  const count = threads !== null ? Number(threads) : kernels === 'engine' ? 1 : navigator.hardwareConcurrency;
  if (!(Number.isInteger(count) && count >= 1)) {
    throw new Error(`?threads=${threads} is not a whole number ≥ 1 (leave it out to pick)`);
  }
  setWasmPaths({
    'tfjs-backend-wasm.wasm': plainWasm,
    'tfjs-backend-wasm-simd.wasm': simdWasm,
    'tfjs-backend-wasm-threaded-simd.wasm': threadedSimdWasm,
  });
  if (!(await startWasmBackend(count))) throw new Error('The wasm backend did not start.');
  const engine = kernels === 'engine' ? installWasmEngineKernels() : null;
  const imagesUrl = query.get('images') ?? IMAGES_MANIFEST_PATH;
  step(`Fetching ${imagesUrl}…`);
  const { images, source } = await fetchImages(imagesUrl, limit);
  const loaded: LoadedModel[] = [];
  for (const slot of MODEL_SLOTS) {
    const url = query.get(slot) ?? MODEL_PATHS[slot];
    step(`Loading the ${slot} model from ${url}…`);
    loaded.push({ slot, url, model: await loadLayersModel(url) });
  }
  step(`Classifying ${images.count} images with both models…`);
  const models = await compare(loaded, images);
  for (const { model } of loaded) model.dispose();
  const backend = `${tf.getBackend()} (${getThreadsCount()} thread${getThreadsCount() === 1 ? '' : 's'}, ${kernels} kernels)`;
  const [height, width] = imageShapeOf(images);
  renderStatus(
    `Done: ${images.count} test images (${height}×${width}, ${source}) on the ${backend} backend.`,
  );
  renderSummary(models, images.count);
  renderGallery(images, models);
  report({
    status: 'done',
    backend: tf.getBackend(),
    threads: getThreadsCount(),
    kernels,
    engineSimd: engine && { build: engine.simd, sharedMemory: engine.sharedMemory },
    crossOriginIsolated: window.crossOriginIsolated,
    imageCount: images.count,
    imageShape: [...imageShapeOf(images)],
    classNames: [...classNamesOf(images)],
    models,
  });
}

run().catch((error: unknown) => {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  renderStatus(message, true);
  report({ status: 'error', error: message });
});
