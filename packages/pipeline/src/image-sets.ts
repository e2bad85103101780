import { type ImageSet, imageShapeOf, valuesPerImage } from '@decompose/cifar10';
import { z } from 'zod';
import { PackedFormatError } from './errors.js';
import { frame, unframe } from './packing.js';

const MAGIC = 'DCIS';

const headerSchema = z.object({
  version: z.literal(1),
  count: z.number().int().nonnegative(),
  shape: z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
  classNames: z.array(z.string()).optional(),
  mean: z.array(z.number()).optional(),
  std: z.array(z.number()).optional(),
});

/**
 * An image set as one buffer (its pixels, labels, shape, class names and normalisation), to travel where no
 * file is shared: to a worker thread or process, or through a queue. {@link unpackImageSet} reverses it.
 */
export function packImageSet(set: ImageSet): Uint8Array {
  const header: z.infer<typeof headerSchema> = {
    version: 1,
    count: set.count,
    shape: [...imageShapeOf(set)],
    ...(set.classNames === undefined ? {} : { classNames: [...set.classNames] }),
    ...(set.mean === undefined ? {} : { mean: [...set.mean] }),
    ...(set.std === undefined ? {} : { std: [...set.std] }),
  };
  return frame(MAGIC, header, [
    set.images.subarray(0, set.count * valuesPerImage(set)),
    set.labels.subarray(0, set.count),
  ]);
}

/**
 * The image set {@link packImageSet} packed; its pixels and labels are views into `bytes` (no copy).
 *
 * @throws PackedFormatError when `bytes` are not a packed image set, or are cut short.
 */
export function unpackImageSet(bytes: Uint8Array): ImageSet {
  const { header, payload } = unframe(bytes, MAGIC, 'image set');
  const parsed = headerSchema.safeParse(header);
  if (!parsed.success)
    throw new PackedFormatError('image set', `its header is wrong (${parsed.error.message})`);
  const { count, shape, classNames, mean, std } = parsed.data;
  const pixels = count * shape[0] * shape[1] * shape[2];
  if (payload.length !== pixels + count) {
    throw new PackedFormatError(
      'image set',
      `${count} images of ${shape.join('×')} need ${pixels + count} bytes of pixels and labels, not ${payload.length}`,
    );
  }
  return {
    images: payload.subarray(0, pixels),
    labels: payload.subarray(pixels),
    count,
    shape,
    ...(classNames === undefined ? {} : { classNames }),
    ...(mean === undefined ? {} : { mean }),
    ...(std === undefined ? {} : { std }),
  };
}
