import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BLOB_BYTES, memoryBlobStore } from './blobs.js';
import { BlobNotFoundError, BlobTooLargeError, RedisUnreachableError } from './errors.js';
import type { Executor, UnitOutcome } from './executor.js';
import { alwaysThrows, badResult, makeBlob, nameBlob, readBlob, seriesSum } from './fixtures/catalogue.js';
import { processId } from './fixtures/pid-catalogue.js';
import { localExecutor } from './local.js';
import { blobPrefix, queueExecutor } from './queue.js';
import {
  freePort,
  killQueueWorkerProcesses,
  type QueueWorkerProcess,
  type RedisServer,
  startQueueWorkerProcess,
  startRedisServer,
} from './testing.js';
import { prepareUnit, type Unit, type UnitProgress } from './unit.js';

const catalogue = new URL('./fixtures/catalogue.ts', import.meta.url);

// The bytes every executor's store gets before the batch, so that read-blob units see the same blob everywhere.
const inputBytes = new TextEncoder().encode('a model, say');
const inputBlob = createHash('sha256').update(inputBytes).digest('hex');

/** A batch with every kind of outcome: results, a throw, bad results, a bad input, blobs both ways. */
const batch: Unit[] = [
  ...[1, 2, 3, 4, 5].map((seed) => seriesSum.unit({ seed, count: 1_000 + seed, steps: 3 })),
  alwaysThrows.unit({ message: 'no luck' }),
  badResult.unit({}),
  badResult.unit({ nan: true }),
  seriesSum.unit({ seed: 1, count: -1 }),
  makeBlob.unit({ seed: 7, size: 3_000 }),
  readBlob.unit({ id: inputBlob }),
  seriesSum.unit({ seed: 1, count: 1_001, steps: 3 }), // the same unit as the first: one job, two outcomes
];

let redis: RedisServer;
let baseline: UnitOutcome<unknown>[];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  killQueueWorkerProcesses();
  await redis?.stop();
});

/** Runs the batch and also collects progress per unit. */
async function runBatch(executor: Executor, units: readonly Unit[] = batch) {
  await executor.blobs.put(inputBytes);
  const progress = new Map<number, UnitProgress[]>();
  const streamed: number[] = [];
  const outcomes = await executor.run(units, {
    onProgress: (index, value) => progress.set(index, [...(progress.get(index) ?? []), value]),
    onResult: (index) => streamed.push(index),
  });
  return { outcomes, progress, streamed };
}

/** Units whose costs order them 1, 3, 2, 0 (1 and 3 cost the same); the last one's cost is refused. */
const costedUnits: Unit[] = [1, 3, 2, 3, -1].map((cost, seed) =>
  seriesSum.unit({ seed, count: 100, steps: 1, sleepMs: 30 }, { cost }),
);

/** A queue worker process on the tests' catalogue, once it takes jobs. */
const startWorker = (queue: string) => startQueueWorkerProcess({ url: redis.url, queue, catalogue });
const stopWorkers = (workers: QueueWorkerProcess[]) => Promise.all(workers.map((worker) => worker.stop()));

describe('local executor', () => {
  it('runs a batch in this thread: results, per-unit failures, progress, blobs', async () => {
    const executor = await localExecutor({ catalogue });
    const { outcomes, progress, streamed } = await runBatch(executor);
    baseline = outcomes;
    expect(outcomes).toHaveLength(batch.length);
    expect(outcomes[0]).toMatchObject({ ok: true, result: { count: 1_001 } });
    expect(outcomes[11]).toEqual(outcomes[0]);
    expect(outcomes[5]).toEqual({ ok: false, error: { name: 'RangeError', message: 'no luck' } });
    expect(outcomes[6]).toMatchObject({ ok: false, error: { name: 'UnitResultError' } });
    expect(outcomes[7]).toMatchObject({ ok: false, error: { name: 'UnitResultError' } });
    expect(outcomes[8]).toMatchObject({ ok: false, error: { name: 'UnitInputError' } });
    expect(outcomes[10]).toEqual({ ok: true, result: { sha256: inputBlob, size: inputBytes.length } });
    const made = outcomes[9] as UnitOutcome<{ id: string; size: number }>;
    expect(made.ok && (await executor.blobs.get(made.result.id)).length).toBe(3_000);
    expect(progress.get(0)).toEqual([1, 2, 3].map((done) => ({ done, total: 3 })));
    expect([...streamed].sort((a, b) => a - b)).toEqual(batch.map((_, i) => i));
    await executor.close();
  });

  it('gives the same outcomes on 2 worker threads', async () => {
    const executor = await localExecutor({ catalogue, threads: 2 });
    const { outcomes, progress } = await runBatch(executor);
    expect(outcomes).toEqual(baseline);
    expect(progress.get(2)).toHaveLength(3);
    await executor.close();
  });

  it('starts the dearest units first, equal costs in input order, and refuses a bad cost', async () => {
    const executor = await localExecutor({ catalogue });
    const started: number[] = [];
    const outcomes = await executor.run(costedUnits, { onResult: (index) => started.push(index) });
    expect(started).toEqual([1, 3, 2, 0, 4]);
    expect(outcomes.slice(0, 4).every((outcome) => outcome.ok)).toBe(true);
    expect(outcomes[4]).toMatchObject({ ok: false, error: { name: 'UnitInputError' } });
    expect((outcomes[4] as { error: { message: string } }).error.message).toMatch(/cost -1/);
    await executor.close();
  });

  it('enforces the blob size limit', async () => {
    expect(MAX_BLOB_BYTES).toBe(512 * 1024 * 1024);
    const store = memoryBlobStore({ maxBytes: 10 });
    await expect(store.put(new Uint8Array(11))).rejects.toBeInstanceOf(BlobTooLargeError);
    await expect(store.get('0'.repeat(64))).rejects.toBeInstanceOf(BlobNotFoundError);
    const executor = await localExecutor({ catalogue, threads: 1, maxBlobBytes: 100 });
    const [outcome] = await executor.run([makeBlob.unit({ seed: 1, size: 101 })]);
    expect(outcome).toMatchObject({ ok: false, error: { name: 'BlobTooLargeError' } });
    await executor.close();
  });
});

describe('queue executor', () => {
  it('gives the same outcomes with 1 and with 2 worker processes, and streams progress', async () => {
    for (const count of [1, 2]) {
      const queue = `same-${count}`;
      const workers = await Promise.all(Array.from({ length: count }, () => startWorker(queue)));
      const executor = await queueExecutor({ url: redis.url, queue, catalogue, backoffMs: 50 });
      const { outcomes, progress } = await runBatch(executor);
      expect(outcomes).toEqual(baseline);
      expect(progress.get(0)?.at(-1)).toEqual({ done: 3, total: 3 });
      const made = outcomes[9] as UnitOutcome<{ id: string }>;
      expect(made.ok && (await executor.blobs.get(made.result.id)).length).toBe(3_000);
      await executor.close();
      await stopWorkers(workers);
    }
  });

  it('starts the dearest jobs first (BullMQ priorities by cost rank)', async () => {
    const queue = 'costed';
    const workers = [await startWorker(queue)];
    const executor = await queueExecutor({ url: redis.url, queue, catalogue });
    const outcomes = await executor.run(costedUnits);
    expect(outcomes[4]).toMatchObject({ ok: false, error: { name: 'UnitInputError' } });
    const reader = new Queue(queue, { connection: { host: '127.0.0.1', port: redis.port } });
    const startedAt = await Promise.all(
      costedUnits.slice(0, 4).map(async (unit) => (await reader.getJob(jobIdOf(unit)))?.processedOn ?? 0),
    );
    expect([0, 1, 2, 3].sort((a, b) => startedAt[a]! - startedAt[b]!)).toEqual([1, 3, 2, 0]);
    await reader.close();
    await executor.close();
    await stopWorkers(workers);
  });

  it('takes each result from the finished job, never from a snapshot read before it finished', async () => {
    // A poll every millisecond over many short jobs reads jobs just as they complete: a snapshot taken before
    // the move to completed has no result yet (it was reported as a null result).
    const queue = 'tight-poll';
    const workers = await Promise.all([startWorker(queue), startWorker(queue)]);
    const executor = await queueExecutor({ url: redis.url, queue, catalogue, pollIntervalMs: 1 });
    const units = Array.from({ length: 80 }, (_, seed) => seriesSum.unit({ seed, count: 50, steps: 1 }));
    const outcomes = await executor.run(units);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    await executor.close();
    await stopWorkers(workers);
  });

  it('retries the job of a worker killed with kill -9 on the other worker', async () => {
    const queue = 'kill';
    const workers = await Promise.all([startWorker(queue), startWorker(queue)]);
    const units = [1, 2, 3].map((seed) => seriesSum.unit({ seed, count: 500, steps: 5, sleepMs: 150 }));
    const local = await localExecutor({ catalogue, threads: 2 });
    const expected = await local.run(units);
    await local.close();

    const executor = await queueExecutor({ url: redis.url, queue, catalogue, backoffMs: 50 });
    const inspect = new Queue(queue, { connection: { host: '127.0.0.1', port: redis.port } });
    let killed: number | undefined;
    const outcomes = await executor.run(units, {
      onProgress: (index) => {
        if (index !== 0 || killed !== undefined) return;
        killed = -1;
        void (async () => {
          const job = await inspect.getJob(jobIdOf(units[0]!));
          const victim = workers.find((worker) => worker.name === job?.processedBy)!;
          killed = victim.pid;
          victim.kill();
        })();
      },
    });
    expect(killed).toBeGreaterThan(0);
    expect(outcomes).toEqual(expected);
    const job = await inspect.getJob(jobIdOf(units[0]!));
    expect(job?.processedBy).not.toBe(`worker-${killed}`);
    expect(job?.attemptsStarted).toBeGreaterThanOrEqual(2);
    await inspect.close();
    await executor.close();
    await stopWorkers(workers);
  });

  it('re-attaches after the coordinator stopped, re-running nothing that completed', async () => {
    const queue = 'restart';
    const workers = [await startWorker(queue)];
    const units = [1, 2, 3, 4, 5, 6].map((seed) =>
      seriesSum.unit({ seed, count: 200, steps: 2, sleepMs: 100 }),
    );
    const first = await queueExecutor({ url: redis.url, queue, catalogue });
    const stop = new AbortController();
    const finished: number[] = [];
    await expect(
      first.run(units, {
        signal: stop.signal,
        onResult: (index) => {
          finished.push(index);
          if (finished.length === 2) stop.abort(new Error('coordinator stopped'));
        },
      }),
    ).rejects.toThrow('coordinator stopped');
    await first.close();

    const inspect = new Queue(queue, { connection: { host: '127.0.0.1', port: redis.port } });
    const before = await Promise.all(finished.map((index) => inspect.getJob(jobIdOf(units[index]!))));
    const second = await queueExecutor({ url: redis.url, queue, catalogue });
    const outcomes = await second.run(units);
    const local = await localExecutor({ catalogue });
    expect(outcomes).toEqual(await local.run(units));
    for (const [i, index] of finished.entries()) {
      const job = await inspect.getJob(jobIdOf(units[index]!));
      expect(job?.attemptsStarted).toBe(1);
      expect(job?.finishedOn).toBe(before[i]?.finishedOn);
    }
    await Promise.all([local.close(), second.close(), inspect.close()]);
    await stopWorkers(workers);
  });

  it('fails fast with a typed error naming the URL when Redis is unreachable', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const error = await queueExecutor({ url, queue: 'none' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RedisUnreachableError);
    expect((error as Error).message).toContain(url);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('keeps blobs in Redis, content-addressed, and enforces the size limit', async () => {
    const executor = await queueExecutor({ url: redis.url, queue: 'blobs', maxBlobBytes: 1_024 });
    const id = await executor.blobs.put(inputBytes);
    expect(id).toBe(inputBlob);
    expect(await executor.blobs.put(inputBytes)).toBe(id);
    expect(Buffer.from(await executor.blobs.get(id)).toString()).toBe('a model, say');
    await expect(executor.blobs.put(new Uint8Array(1_025))).rejects.toBeInstanceOf(BlobTooLargeError);
    await executor.blobs.delete(id);
    await expect(executor.blobs.get(id)).rejects.toBeInstanceOf(BlobNotFoundError);
    await executor.close();
  });
});

describe('queue worker start-up', () => {
  it('starts its sandboxed child with the worker, before any job, and runs the first job in it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'decompose-jobs-startup-'));
    const log = path.join(dir, 'imports.txt');
    const queue = 'startup';
    const worker = await startQueueWorkerProcess({
      url: redis.url,
      queue,
      catalogue: new URL('./fixtures/pid-catalogue.ts', import.meta.url),
      env: { DECOMPOSE_JOBS_TEST_IMPORT_LOG: log },
    });
    const executor = await queueExecutor({ url: redis.url, queue });
    try {
      // Imported by the worker (to check it) and, before any job was enqueued, by its sandboxed child.
      const imported = (await readFile(log, 'utf8')).trim().split('\n').map(Number);
      expect(imported).toHaveLength(2);
      expect(imported[0]).toBe(worker.pid);
      const [outcome] = await executor.run([processId.unit({ seed: 1 })]);
      expect(outcome).toEqual({ ok: true, result: { pid: imported[1] } });
    } finally {
      await executor.close();
      await worker.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('queue retention', () => {
  const inspect = (queue: string) =>
    new Queue(queue, { connection: { host: '127.0.0.1', port: redis.port } });

  it('keeps finished jobs and every blob for the retention, then lets them go; a unit asked for again runs again', async () => {
    const queue = 'retention';
    const workers = [await startWorker(queue)];
    const executor = await queueExecutor({ url: redis.url, queue, catalogue, retentionSeconds: 2 });
    const jobs = inspect(queue);
    const client = new Redis(redis.url);
    const ttl = (id: string) => client.pttl(`${blobPrefix(queue)}${id}`);
    try {
      const input = await executor.blobs.put(inputBytes);
      const made = makeBlob.unit({ seed: 3, size: 100 });
      const [first, read] = await executor.run([made, readBlob.unit({ id: input })]);
      expect(read).toMatchObject({ ok: true });
      if (!first?.ok) throw new Error(`make-blob failed: ${JSON.stringify(first)}`);
      const output = (first.result as { id: string }).id;
      // The coordinator's input and the worker's output: both kept the retention (2 s) from their last use.
      for (const id of [input, output]) {
        expect(await ttl(id)).toBeGreaterThan(0);
        expect(await ttl(id)).toBeLessThanOrEqual(2_000);
      }
      const job = await jobs.getJob(jobIdOf(made));
      expect(job?.opts.removeOnComplete).toEqual({ age: 2 });
      expect(job?.data.retentionSeconds).toBe(2);

      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect([await ttl(input), await ttl(output)]).toEqual([-2, -2]);
      // BullMQ removes the finished jobs older than the retention as later ones finish.
      await executor.run([seriesSum.unit({ seed: 99, count: 10 })]);
      expect(await jobs.getJob(jobIdOf(made))).toBeUndefined();
      // Asked for again, the unit runs again, and its output is back.
      expect(await executor.run([made])).toEqual([first]);
      expect(await executor.blobs.has(output)).toBe(true);
    } finally {
      client.disconnect();
      await Promise.all([executor.close(), jobs.close()]);
      await stopWorkers(workers);
    }
  });

  it('runs a completed job again when a blob its result names is gone; fails it when the blob does not come back', async () => {
    const queue = 'result-blob-gone';
    const workers = [await startWorker(queue)];
    const jobs = inspect(queue);
    const unit = makeBlob.unit({ seed: 4, size: 200 });
    const first = await queueExecutor({ url: redis.url, queue, catalogue });
    const [made] = await first.run([unit]);
    if (!made?.ok) throw new Error(`make-blob failed: ${JSON.stringify(made)}`);
    const output = (made.result as { id: string }).id;
    // Gone (its retention passed, or someone deleted it) while the completed job stays.
    await first.blobs.delete(output);
    await first.close();

    // A coordinator started again re-attaches to the completed job, sees the blob gone and runs it again.
    const second = await queueExecutor({ url: redis.url, queue, catalogue });
    try {
      expect(await second.run([unit])).toEqual([made]);
      expect(await second.blobs.has(output)).toBe(true);
      expect(await jobs.getJob(jobIdOf(unit))).toMatchObject({ attemptsStarted: 2 });

      // A result whose blob is not there after its run again either: the unit fails, once, naming the blob.
      const phantom = nameBlob.unit({ text: 'never put' });
      const [outcome] = await second.run([phantom]);
      expect(outcome).toMatchObject({ ok: false, error: { name: 'BlobNotFoundError' } });
      expect(outcome?.ok === false && outcome.error.message).toContain(
        createHash('sha256').update('never put').digest('hex'),
      );
      expect(await jobs.getJob(jobIdOf(phantom))).toMatchObject({ attemptsStarted: 2 });
    } finally {
      await Promise.all([second.close(), jobs.close()]);
      await stopWorkers(workers);
    }
  });
});

function jobIdOf(unit: Unit): string {
  return prepareUnit(unit).id;
}
