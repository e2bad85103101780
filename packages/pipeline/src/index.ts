export { PackedFormatError, PipelineError } from './errors.js';
export { packImageSet, unpackImageSet } from './image-sets.js';
export { loadPackedModel, type PackedModel, packModel, unpackModel } from './models.js';
