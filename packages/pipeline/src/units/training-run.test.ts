import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { findBundledSubset, type ImageSet, readCifar10, selectImages } from '@decompose/cifar10';
import {
  checkpointPrefix,
  type Executor,
  localExecutor,
  queueExecutor,
  type UnitProgress,
} from '@decompose/jobs';
import { type RedisServer, startRedisServer } from '@decompose/jobs/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PIPELINE_CATALOGUE } from '../catalogue-url.js';
import { packImageSet } from '../image-sets.js';
import { trainingRunUnit } from './training-run.js';

// The jobs package's test worker (a queue worker process on any catalogue) and the hook that lets a process
// run TypeScript sources: tests run from src/, not dist/.
const jobs = import.meta.resolve('@decompose/jobs');
const workerScript = fileURLToPath(new URL('./fixtures/queue-worker.ts', jobs));
const register = new URL('./source/register.mjs', jobs).href;

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
const workers: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  const all = await readCifar10(findBundledSubset());
  const first = (set: ImageSet, count: number) =>
    selectImages(
      set,
      Uint32Array.from({ length: count }, (_, i) => i),
    );
  data = { train: first(all.train, 64), test: first(all.test, 16) };
});

afterAll(async () => {
  for (const child of workers)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await redis?.stop();
});

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
    first.kill('SIGKILL');
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

/** Starts a queue worker process on the pipeline's catalogue and resolves once it takes jobs. */
async function startWorker(queue: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@decompose/source',
      '--import',
      register,
      workerScript,
      redis.url,
      queue,
      PIPELINE_CATALOGUE.href,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  workers.push(child);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready')) resolve();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${output}`)));
  });
  return child;
}
