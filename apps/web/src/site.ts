/** The layout of a prepared folder, shared by the Node side that writes it and the page that reads it. */

/** The two model slots of the page, in display order. */
export const MODEL_SLOTS = ['original', 'compressed'] as const;
/** One of {@link MODEL_SLOTS}. */
export type ModelSlot = (typeof MODEL_SLOTS)[number];

/** Where, inside a prepared folder, each model's `model.json` is (the page's default URLs). */
export const MODEL_PATHS: Readonly<Record<ModelSlot, string>> = {
  original: 'models/original/model.json',
  compressed: 'models/compressed/model.json',
};
/**
 * The test images' manifest inside a prepared folder (`SiteImagesManifest`: count, shape, labels, class
 * names, normalisation); the page's default `images` URL.
 */
export const IMAGES_MANIFEST_PATH = 'images.json';
/** The test images' pixels inside a prepared folder: uint8 NHWC, resized, not normalised. */
export const IMAGES_PATH = 'images.bin';
/** Node's predictions inside a prepared folder, for comparing with the page's. */
export const NODE_PREDICTIONS_PATH = 'node-predictions.json';
