import { findBundledSubset, type ImageSet, readCifar10, selectImages } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import {
  blobPrefix,
  checkpointPrefix,
  type Executor,
  localExecutor,
  queueExecutor,
  type UnitProgress,
} from '@decompose/jobs';
import {
  killQueueWorkerProcesses,
  type RedisServer,
  startQueueWorkerProcess,
  startRedisServer,
} from '@decompose/jobs/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PIPELINE_CATALOGUE } from '../catalogue-url.js';
import { packImageSet } from '../image-sets.js';
import { trainOnExecutor } from '../training-run.js';
import { trainingRunUnit } from './training-run.js';

const EPOCHS = 3;
const recipe = {
  batch: 16,
  lr: 0.05,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 5e-4,
  decayOn: 'all' as const,
  schedule: 'cosine' as const,
  gamma: 0.1,
  warmupEpochs: 0,
  labelSmoothing: 0,
  augment: true,
  workers: 0,
  seed: 1,
  epochs: EPOCHS,
};

let redis: RedisServer;
let data: { train: ImageSet; test: ImageSet };

beforeAll(async () => {
  redis = await startRedisServer();
  const all = await readCifar10(findBundledSubset());
  data = { train: selectFirst(all.train, 64), test: selectFirst(all.test, 16) };
});

afterAll(async () => {
  killQueueWorkerProcesses();
  await redis?.stop();
});

/** The first `count` images of a set. */
const selectFirst = (set: ImageSet, count: number) =>
  selectImages(
    set,
    Uint32Array.from({ length: count }, (_, i) => i),
  );

/** The unit on `executor`'s blobs, its progress collected. */
async function trainOn(executor: Executor) {
  const blobs = {
    train: await executor.blobs.put(packImageSet(data.train)),
    test: await executor.blobs.put(packImageSet(data.test)),
  };
  const unit = trainingRunUnit.unit({
    architecture: { arch: 'resnet20', seed: 3 },
    model: null,
    data: blobs,
    recipe,
    holdOut: null,
  });
  const progress: Exclude<UnitProgress, number>[] = [];
  const running = executor.run([unit], {
    onProgress: (_index, p) => {
      if (typeof p !== 'number') progress.push(p);
    },
  });
  return { running, progress };
}

it('resumes a training run whose queue worker was killed after its first epoch checkpoint, to the same weights', async () => {
  const local = await localExecutor();
  const { running: uninterrupted } = await trainOn(local);
  const [expected] = await uninterrupted;
  if (!expected?.ok) throw new Error(`the local run failed: ${JSON.stringify(expected)}`);

  const queue = 'training-checkpoints';
  const first = await startWorker(queue);
  const executor = await queueExecutor({ url: redis.url, queue, catalogue: PIPELINE_CATALOGUE });
  const client = new Redis(redis.url);
  const checkpoints = () => client.keys(`${checkpointPrefix(queue)}*`);
  try {
    const { running, progress } = await trainOn(executor);
    // The first epoch's checkpoint is in Redis: kill -9 the worker (its job is in its second epoch).
    while ((await checkpoints()).length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    first.kill();
    await startWorker(queue);
    const [outcome] = await running;
    if (!outcome?.ok) throw new Error(`the queued run failed: ${JSON.stringify(outcome)}`);

    const resumed = progress.filter((p) => p.phase === 'resumed');
    expect(resumed).toHaveLength(1);
    const from = resumed[0]!.done;
    expect(from).toBeGreaterThanOrEqual(1);
    // The second attempt trains only the epochs after its checkpoint.
    const retried = progress.slice(progress.indexOf(resumed[0]!));
    const trained = retried.filter((p) => p.phase === 'epoch').map((p) => p.done);
    expect(trained).toEqual(Array.from({ length: EPOCHS - from }, (_, i) => from + 1 + i));
    expect(retried.find((p) => p.phase === 'step')?.done).toBe((from * data.train.count) / recipe.batch + 1);

    // Byte-identical weights (the packed model's blob id is its SHA-256) and the same epochs as uninterrupted.
    expect(outcome.result.model).toBe(expected.result.model);
    expect(await executor.blobs.get(outcome.result.model)).toEqual(
      await local.blobs.get(expected.result.model),
    );
    const figures = (epochs: typeof expected.result.epochs) =>
      epochs.map((e) => [
        e.epoch,
        e.globalStep,
        e.train.loss,
        e.train.accuracy,
        e.eval?.loss,
        e.eval?.accuracy,
      ]);
    expect(figures(outcome.result.epochs)).toEqual(figures(expected.result.epochs));
    // Cleared once the unit completed.
    expect(await checkpoints()).toEqual([]);
  } finally {
    client.disconnect();
    await executor.close();
    await local.close();
  }
}, 180_000);

it("two coordinators training on the same images share their blobs: neither pulls them from under the other's waiting unit", async () => {
  const queue = 'shared-inputs';
  const coordinators = [
    await queueExecutor({ url: redis.url, queue }),
    await queueExecutor({ url: redis.url, queue }),
  ];
  const [a, b] = coordinators as [Executor, Executor];
  const request = (seed: number) => ({
    architecture: { arch: 'resnet20' as const, seed },
    data: { train: selectFirst(data.train, 32), test: data.test },
    recipe: { ...recipe, epochs: 1 },
    holdOut: null,
  });
  // This process loads the trained models.
  await initEngine();
  try {
    const first = await startWorker(queue);
    let started: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const trainingA = trainOnExecutor(a, request(1), { what: 'A', onProgress: () => started() });
    await running;
    // The only worker finishes A's unit and takes no more: B's unit, on the same images (the same blob keys),
    // waits until A's coordinator is done with them.
    const stopping = first.stop();
    const trainingB = trainOnExecutor(b, request(2), { what: 'B' });
    const trainedA = await trainingA;
    await stopping;
    await startWorker(queue);
    const trainedB = await trainingB;
    expect(trainedB.epochs).toHaveLength(1);
    // The images stay for the queue's retention, whoever used them last.
    const client = new Redis(redis.url);
    const images = await client.keys(`${blobPrefix(queue)}*`);
    expect(images.length).toBeGreaterThanOrEqual(2);
    for (const key of images) expect(await client.pttl(key)).toBeGreaterThan(0);
    client.disconnect();
    trainedA.model.dispose();
    trainedB.model.dispose();
  } finally {
    await Promise.all(coordinators.map((executor) => executor.close()));
  }
}, 180_000);

/** A queue worker process on the pipeline's catalogue, once it takes jobs. */
const startWorker = (queue: string) =>
  startQueueWorkerProcess({ url: redis.url, queue, catalogue: PIPELINE_CATALOGUE });
