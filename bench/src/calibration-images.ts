import { CHANNELS, type Cifar10Images, IMAGE_SIZE, normalizeImages, selectImages } from '@decompose/cifar10';
import type { LabelledImages } from '@decompose/sensitivity';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Calibration images as `scanSensitivity({ calibration })` takes them: normalised as in training, with their
 * labels. The caller disposes `images`.
 */
export function labelledImages(data: Cifar10Images): LabelledImages {
  const images = tf.tensor4d(normalizeImages(data.images), [data.count, IMAGE_SIZE, IMAGE_SIZE, CHANNELS]);
  return { images, labels: data.labels };
}

/** The first `limit` images of `data` (smoke runs' `--limit-*` flags), or `data` itself when limit is null or not smaller. */
export function firstImages(data: Cifar10Images, limit: number | null): Cifar10Images {
  if (limit === null || limit >= data.count) return data;
  return selectImages(
    data,
    Uint32Array.from({ length: limit }, (_, i) => i),
  );
}
