export { classify, type Predictions, weightBytes } from './classify.js';
export {
  createDemoModels,
  DEMO_BASIS_LAYERS,
  DEMO_SVD_LAYERS,
  type DemoModelOptions,
  type DemoModels,
} from './demo.js';
export { WebError } from './errors.js';
export {
  firstImages,
  readSiteImages,
  SITE_IMAGES_VERSION,
  SiteImagesError,
  type SiteImagesManifest,
  writeSiteImages,
} from './images-file.js';
export { CROSS_ORIGIN_ISOLATION_HEADERS } from './isolation.js';
export { BUILT_PAGE_DIR, copyPage, PageNotBuiltError } from './page-files.js';
export { PAGE_LAYER_CLASSES } from './page-layers.js';
export { type NodePredictions, type PrepareSiteOptions, prepareSite, SiteModelError } from './prepare.js';
export type { KernelSet, ModelResult, PageResults } from './results.js';
export { KERNEL_SETS, RESULTS_PROPERTY } from './results.js';
export { type ServeSiteOptions, type SiteServer, SiteServerError, serveSite } from './serve.js';
export {
  IMAGES_MANIFEST_PATH,
  IMAGES_PATH,
  MODEL_PATHS,
  MODEL_SLOTS,
  type ModelSlot,
  NODE_PREDICTIONS_PATH,
} from './site.js';
