// The pipeline's unit kinds, the module that worker threads and queue workers import (a plain list of
// exports: `@decompose/jobs` finds the kinds among them; `PIPELINE_CATALOGUE` in catalogue-url.ts names it).
export { armUnit } from './units/arm.js';
export { scanLayer } from './units/scan-layer.js';
export { trainingRunUnit } from './units/training-run.js';
