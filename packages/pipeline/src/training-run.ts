import type { ImageSet } from '@decompose/cifar10';
import type { Executor, UnitProgress } from '@decompose/jobs';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { z } from 'zod';
import { TrainingRunError } from './errors.js';
import { packImageSet } from './image-sets.js';
import { loadPackedModel } from './models.js';
import {
  type trainingRunInputSchema,
  type trainingRunResultSchema,
  trainingRunUnit,
} from './units/training-run.js';

/** What {@link trainOnExecutor} trains: a training run's input, with the images themselves. */
export type TrainingRunRequest = Omit<z.input<typeof trainingRunInputSchema>, 'data' | 'model'> & {
  data: { train: ImageSet; test: ImageSet };
};

/** A finished training run: the trained model (the caller disposes it) and its record. */
export type TrainingRunOutcome = Omit<z.output<typeof trainingRunResultSchema>, 'model'> & {
  model: tfl.LayersModel;
};

/**
 * Runs one training run (a fresh ResNet of `architecture`) as a `training-run` unit on `executor`: in this
 * thread, or on a `decompose worker` through a queue. The images go as blobs and the model comes back as one.
 * None is deleted here: on a queue they are content-addressed (another coordinator with the same images uses
 * the same keys) and go by themselves after the queue's retention.
 *
 * @throws TrainingRunError naming `what` when the unit fails for good (with the unit's error).
 */
export async function trainOnExecutor(
  executor: Executor,
  request: TrainingRunRequest,
  options: { what: string; onProgress?: (progress: UnitProgress) => void; signal?: AbortSignal },
): Promise<TrainingRunOutcome> {
  const data = {
    train: await executor.blobs.put(packImageSet(request.data.train)),
    test: await executor.blobs.put(packImageSet(request.data.test)),
  };
  const [outcome] = await executor.run([trainingRunUnit.unit({ ...request, model: null, data })], {
    ...(options.onProgress ? { onProgress: (_index, progress) => options.onProgress?.(progress) } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (outcome === undefined || !outcome.ok) {
    throw new TrainingRunError(
      options.what,
      outcome?.ok === false ? outcome.error : { name: 'Error', message: 'no outcome' },
    );
  }
  const model = await loadPackedModel(await executor.blobs.get(outcome.result.model));
  return { ...outcome.result, model };
}
