import type { LayersModel } from '@tensorflow/tfjs-layers';
import { GradientOptionsError, InvalidBatchError } from './errors.js';

/** Examples to run a model on: NHWC float images, already normalised. */
export interface ImageBatch {
  /** `count` examples, each laid out as the model's input shape (e.g. height × width × channels), back to back. */
  images: Float32Array;
  count: number;
}

/** One training batch: images already normalised/augmented, and integer class labels. */
export interface TrainingBatch extends ImageBatch {
  /** `count` class indices in [0, numClasses). */
  labels: Int32Array;
}

/** The shape of one example the model takes (its input shape without the batch dimension). */
export function exampleShapeOf(model: LayersModel): number[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new GradientOptionsError(
      `The model has ${model.inputs.length} inputs and ${model.outputs.length} outputs; gradients need exactly one of each.`,
    );
  }
  const [, ...shape] = model.inputs[0]?.shape ?? [];
  if (shape.length === 0 || shape.some((size) => size === null || size <= 0)) {
    throw new GradientOptionsError(
      `The model's input shape [${model.inputs[0]?.shape.join(', ')}] must be fully known apart from the batch size.`,
    );
  }
  return shape as number[];
}

/** Throws {@link InvalidBatchError} unless the batch holds `count` examples of `exampleSize` floats. */
export function checkImages(batch: ImageBatch, exampleSize: number): void {
  const { images, count } = batch;
  if (!Number.isInteger(count) || count < 1) {
    throw new InvalidBatchError(`Batch count must be a positive integer; got ${count}.`);
  }
  if (images.length !== count * exampleSize) {
    throw new InvalidBatchError(
      `Batch images hold ${images.length} floats; ${count} examples of ${exampleSize} need ${count * exampleSize}.`,
    );
  }
}

/** Throws {@link InvalidBatchError} unless the batch holds `count` examples of `exampleSize` floats with valid labels. */
export function checkBatch(batch: TrainingBatch, exampleSize: number, numClasses: number): void {
  checkImages(batch, exampleSize);
  const { labels, count } = batch;
  if (labels.length !== count) {
    throw new InvalidBatchError(
      `Batch has ${labels.length} labels for ${count} examples; give one label each.`,
    );
  }
  for (let i = 0; i < count; i++) {
    const label = labels[i] ?? -1;
    if (label < 0 || label >= numClasses) {
      throw new InvalidBatchError(`Label ${label} at index ${i} is outside [0, ${numClasses}) (numClasses).`);
    }
  }
}

/** A contiguous part of a batch. */
export interface BatchSlice {
  start: number;
  count: number;
}

/** Splits `count` examples into `parts` contiguous slices whose sizes differ by at most one (some may be empty). */
export function splitBatch(count: number, parts: number): BatchSlice[] {
  const base = Math.floor(count / parts);
  const larger = count % parts;
  const slices: BatchSlice[] = [];
  let start = 0;
  for (let part = 0; part < parts; part++) {
    const size = base + (part < larger ? 1 : 0);
    slices.push({ start, count: size });
    start += size;
  }
  return slices;
}
