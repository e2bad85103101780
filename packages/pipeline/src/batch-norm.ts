import type { Cifar10Images } from '@decompose/cifar10';
import { type BatchNormReestimation, reestimateBatchNorm } from '@decompose/core';
import { augmentedImages } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { plural } from './training.js';

/** How {@link reestimateOnTrainingImages} draws and feeds its images. */
export interface TrainingImagesReestimation {
  /** Training images to re-estimate on (all of `train` if it has fewer); at least 1. */
  images: number;
  /** Images per training-mode forward pass. */
  batch: number;
  /** Seed of the images' shuffle and augmentation. */
  seed: number;
}

/**
 * Re-estimates the BatchNorm moving statistics of `model`, just rewritten by a surgery, on training images shown
 * as training shows them (shuffled, normalised, cropped and flipped), so that they fit the rewritten layers'
 * outputs again (core's `reestimateBatchNorm`). Only the BatchNorm statistics change.
 */
export function reestimateOnTrainingImages(
  model: tfl.LayersModel,
  train: Cifar10Images,
  { images, batch, seed }: TrainingImagesReestimation,
): BatchNormReestimation {
  const inputs = augmentedImages(train, images, seed);
  try {
    return reestimateBatchNorm(model, inputs, { batchSize: batch });
  } finally {
    inputs.dispose();
  }
}

/** One log line for a re-estimation, e.g. "re-estimated 19 BatchNorm layers on 1024 augmented training images". */
export function describeReestimation(done: {
  layers: BatchNormReestimation['layers'] | number;
  images: number;
}): string {
  const layers = typeof done.layers === 'number' ? done.layers : done.layers.length;
  return `re-estimated ${plural(layers, 'BatchNorm layer')} on ${plural(done.images, 'augmented training image')}`;
}
