// The pipeline's unit kinds: the module worker threads and queue workers import (`loadCatalogue`).
export { armUnit } from './units/arm.js';
export { trainingRunUnit } from './units/training-run.js';

/** This module's URL, the catalogue to hand to `localExecutor`, `queueExecutor` and `runQueueWorker`. */
export const PIPELINE_CATALOGUE = new URL('./catalogue.js', import.meta.url);
