import type { ImageSet } from '@decompose/cifar10';
import { type BlobStore, blobIdSchema, type JsonValue, type UnitProgress } from '@decompose/jobs';
import type { EpochMetrics, StepProgress } from '@decompose/train';
import { z } from 'zod';
import { unpackImageSet } from '../image-sets.js';

/** Training and test images of a unit, as blob ids of packed image sets (`packImageSet`). */
export const dataBlobsSchema = z.object({ train: blobIdSchema, test: blobIdSchema });

/** One epoch of a training run or fine-tune, as train's `EpochMetrics`. */
export const epochMetricsSchema = z.object({
  epoch: z.number().int(),
  epochs: z.number().int(),
  globalStep: z.number().int(),
  lr: z.number(),
  seconds: z.number(),
  train: z.object({
    loss: z.number(),
    accuracy: z.number(),
    imagesPerSecond: z.number(),
    seconds: z.number(),
  }),
  eval: z
    .object({
      loss: z.number(),
      accuracy: z.number(),
      count: z.number().int(),
      seconds: z.number(),
      imagesPerSecond: z.number(),
    })
    .nullable(),
}) satisfies z.ZodType<EpochMetrics>;

/** The image sets of a unit's data blobs. */
export async function readImageSets(
  blobs: BlobStore,
  data: z.output<typeof dataBlobsSchema>,
): Promise<{ train: ImageSet; test: ImageSet }> {
  return {
    train: unpackImageSet(await blobs.get(data.train)),
    test: unpackImageSet(await blobs.get(data.test)),
  };
}

/**
 * A training step as unit progress: `done`/`total` count steps of the whole run, and the step's figures ride
 * along so a coordinator draws the same progress bar as a local run.
 */
export function stepProgress(p: StepProgress): UnitProgress {
  return { ...p, phase: 'step', done: p.globalStep, total: p.epochs * p.stepsPerEpoch };
}

/** A finished epoch as unit progress (the coordinator logs it as it arrives). */
export function epochProgress(m: EpochMetrics): UnitProgress {
  return {
    phase: 'epoch',
    done: m.epoch,
    total: m.epochs,
    metrics: JSON.parse(JSON.stringify(m)) as JsonValue,
  };
}

/** A restored unit checkpoint as unit progress: the training goes on after `epoch` of `epochs`. */
export function resumedProgress(epoch: number, epochs: number): UnitProgress {
  return { phase: 'resumed', done: epoch, total: epochs };
}
