import { type ImageSet, imageShapeOf } from './format.js';
import { CIFAR10_MEAN, CIFAR10_STD, createNormalizeTable, drawCropFlip, writeImage } from './preprocess.js';
import { deriveSeed, Rng } from './rng.js';

/** One batch, ready for the training loop. Its arrays are reused: the next batch overwrites them. */
export interface Batch {
  /** `count × height × width × channels` normalised floats, NHWC (a view of the stream's reused buffer). */
  readonly images: Float32Array;
  /** `count` labels (a view of the stream's reused buffer). */
  readonly labels: Int32Array;
  /** Number of images in this batch (the last batch of an epoch may be smaller unless `dropLast`). */
  readonly count: number;
  /** Position of this batch within its epoch, from 0. */
  readonly index: number;
}

/** Options of {@link createBatchStream}. */
export interface BatchStreamOptions {
  /** Images per batch (a positive integer). */
  readonly batchSize: number;
  /** Visit images in a new seeded order each epoch (default true); false keeps file order. */
  readonly shuffle?: boolean;
  /** Apply pad-4 random crop and random horizontal flip (default false; use for training only). */
  readonly augment?: boolean;
  /** Seed of the shuffle and the augmentation (default 0). */
  readonly seed?: number;
  /** Skip the last batch of an epoch if it is smaller than `batchSize` (default false). */
  readonly dropLast?: boolean;
  /** Per-channel mean for normalisation (default the data's `mean`, else {@link CIFAR10_MEAN}). */
  readonly mean?: readonly number[];
  /** Per-channel std for normalisation (default the data's `std`, else {@link CIFAR10_STD}). */
  readonly std?: readonly number[];
}

/** Options of {@link BatchStream.epoch}. */
export interface EpochOptions {
  /** First batch to produce (default 0): resumes an epoch interrupted after `startBatch` batches. */
  readonly startBatch?: number;
}

/** Batches over a data set, epoch by epoch; see {@link createBatchStream}. */
export interface BatchStream {
  /** Number of images the stream draws from. */
  readonly size: number;
  /** Batches each epoch yields. */
  readonly batchesPerEpoch: number;
  /**
   * The batches of epoch `epoch` (from 0). The order and augmentation depend only on (seed, epoch,
   * batch index), so any epoch can be produced directly, e.g. after `--resume`.
   */
  epoch(epoch: number, options?: EpochOptions): IterableIterator<Batch>;
}

function checkCount(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}.`);
  }
}

/**
 * Creates a batch stream for a training or evaluation loop, over images of any shape (`data.shape`). Each batch is normalised (and augmented if
 * asked) straight from the uint8 images into one reused Float32Array, so no epoch copies the data set.
 *
 * Reproducibility: epoch `e`'s order comes from an RNG seeded by (seed, e), and batch `b`'s augmentation
 * from one seeded by (seed, e, b). No state carries from epoch to epoch, so a resumed run reproduces the
 * batches of an uninterrupted one.
 *
 * @example
 * ```ts
 * const stream = createBatchStream(data.train, { batchSize: 128, augment: true, seed: 1 });
 * for (let e = 0; e < 10; e++) for (const batch of stream.epoch(e)) train(batch.images, batch.labels);
 * ```
 */
export function createBatchStream(data: ImageSet, options: BatchStreamOptions): BatchStream {
  const { batchSize, shuffle = true, augment = false, seed = 0, dropLast = false } = options;
  checkCount('batchSize', batchSize, 1);
  checkCount('seed', seed, 0);
  const shape = imageShapeOf(data);
  const PIXELS_PER_IMAGE = shape[0] * shape[1] * shape[2];
  const table = createNormalizeTable(
    options.mean ?? data.mean ?? CIFAR10_MEAN,
    options.std ?? data.std ?? CIFAR10_STD,
    shape[2],
  );
  const size = data.count;
  const batchesPerEpoch = dropLast ? Math.floor(size / batchSize) : Math.ceil(size / batchSize);
  const imageBuffer = new Float32Array(batchSize * PIXELS_PER_IMAGE);
  const labelBuffer = new Int32Array(batchSize);

  function* epoch(epochIndex: number, epochOptions: EpochOptions = {}): IterableIterator<Batch> {
    const { startBatch = 0 } = epochOptions;
    checkCount('epoch', epochIndex, 0);
    checkCount('startBatch', startBatch, 0);
    const order = new Uint32Array(size);
    for (let i = 0; i < size; i++) order[i] = i;
    if (shuffle) Rng.fromSeed(deriveSeed(seed, epochIndex)).shuffle(order);
    for (let batch = startBatch; batch < batchesPerEpoch; batch++) {
      const first = batch * batchSize;
      const count = Math.min(batchSize, size - first);
      const rng = augment ? Rng.fromSeed(deriveSeed(seed, epochIndex, batch)) : undefined;
      for (let i = 0; i < count; i++) {
        const image = order[first + i]!;
        labelBuffer[i] = data.labels[image]!;
        writeImage(
          data.images,
          image,
          table,
          imageBuffer,
          i * PIXELS_PER_IMAGE,
          rng && drawCropFlip(rng),
          shape,
        );
      }
      yield {
        images: count === batchSize ? imageBuffer : imageBuffer.subarray(0, count * PIXELS_PER_IMAGE),
        labels: count === batchSize ? labelBuffer : labelBuffer.subarray(0, count),
        count,
        index: batch,
      };
    }
  }

  return { size, batchesPerEpoch, epoch };
}
