import type { SimdBuild } from '@decompose/engine/browser';
import type { ModelSlot } from './site.js';

/** What the page measured for one model. */
export interface ModelResult {
  slot: ModelSlot;
  /** The `model.json` URL it loaded. */
  url: string;
  /** Parameters (weights) of the model. */
  params: number;
  /** Bytes of its weights. */
  weightBytes: number;
  /** How many layers of each class it has (e.g. `{ Conv2D: 13, BasisConv2D: 6, … }`). */
  layerClasses: Record<string, number>;
  /** Fraction of the images classified correctly. */
  accuracy: number;
  /**
   * Median over batches of a batch's wall time per image; the models alternate batch by batch, after one
   * warm-up batch each, so other load on the machine slows both alike.
   */
  msPerImage: number;
  /** Median wall time of a one-image predict (latency), over up to 16 images, the models alternating. */
  msPerImageBatch1: number;
  /** Predicted class of each image, in file order. */
  classes: number[];
  /** Softmax probabilities of each image. */
  probabilities: number[][];
}

/**
 * The convolution kernels the page runs on tfjs's wasm backend: the engine's (`@decompose/engine/browser`, as
 * `decompose eval` runs in Node) or the backend's own, XNNPACK's.
 */
export const KERNEL_SETS = ['engine', 'xnnpack'] as const;
export type KernelSet = (typeof KERNEL_SETS)[number];

/** What the page puts on `window.__decomposeResults`: `running` until it is `done` or hits an `error`. */
export type PageResults =
  | { status: 'running'; step: string }
  | { status: 'error'; error: string }
  | {
      status: 'done';
      backend: string;
      /** Threads the wasm backend runs on (its threaded build when the page is cross-origin isolated). */
      threads: number;
      /** Whose convolution kernels ran (`?kernels=`). */
      kernels: KernelSet;
      /**
       * With the engine's kernels, the build of its SIMD module on the backend's memory (null: this browser cannot
       * run it, XNNPACK's ran instead) and whether that memory is shared (the threaded build); null with XNNPACK's.
       */
      engineSimd: { build: SimdBuild | null; sharedMemory: boolean } | null;
      /** Whether the page was served cross-origin isolated (COOP/COEP), which the threaded build needs. */
      crossOriginIsolated: boolean;
      imageCount: number;
      /** One image's `[height, width, channels]`, from `images.json`. */
      imageShape: [number, number, number];
      /** The class names the page labels images and predictions with, from `images.json`. */
      classNames: string[];
      models: ModelResult[];
    };

/** The `window` property the page reports on. */
export const RESULTS_PROPERTY = '__decomposeResults';
