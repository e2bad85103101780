import { createBatchStream, type ImageSet, imageShapeOf } from '@decompose/cifar10';
import * as tf from '@tensorflow/tfjs-core';

/**
 * `count` images of `data` (all of them if fewer) as training shows them: shuffled, normalised (with the data's mean/std), pad-4 cropped and
 * flipped, seeded. For statistics that should describe what the network saw in training, such as
 * `reestimateBatchNorm` after a surgery. The caller disposes the tensor.
 *
 * @throws RangeError if `count` is not a positive integer
 */
export function augmentedImages(data: ImageSet, count: number, seed = 0): tf.Tensor4D {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`augmentedImages: count must be a positive integer, got ${count}.`);
  }
  const stream = createBatchStream(data, { batchSize: count, shuffle: true, augment: true, seed });
  const batch = stream.epoch(0).next().value;
  if (!batch) throw new RangeError('augmentedImages: the data set has no images.');
  return tf.tensor4d(batch.images.slice(), [batch.count, ...imageShapeOf(data)]);
}
