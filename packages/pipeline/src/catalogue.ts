// The pipeline's unit kinds, the module that worker threads and queue workers import (a plain list of
// exports: `@decompose/jobs` finds the kinds among them).
export { scanLayer } from './units/scan-layer.js';
