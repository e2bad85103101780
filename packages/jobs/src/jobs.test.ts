import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BLOB_BYTES, memoryBlobStore } from './blobs.js';
import { BlobNotFoundError, BlobTooLargeError, RedisUnreachableError } from './errors.js';
import type { Executor, UnitOutcome } from './executor.js';
import { alwaysThrows, badResult, makeBlob, readBlob, seriesSum } from './fixtures/catalogue.js';
import { localExecutor } from './local.js';
import { queueExecutor } from './queue.js';
import { freePort, type RedisServer, startRedisServer } from './testing.js';
import { prepareUnit, type Unit, type UnitProgress } from './unit.js';

const catalogue = new URL('./fixtures/catalogue.ts', import.meta.url);
const workerScript = fileURLToPath(new URL('./fixtures/queue-worker.ts', import.meta.url));
const register = new URL('./source/register.mjs', import.meta.url).href;

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
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
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

/** Starts a queue worker process and resolves once it takes jobs. */
async function startWorker(queue: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=@decompose/source', '--import', register, workerScript, redis.url, queue],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
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

async function stopWorkers(workers: ChildProcess[]) {
  await Promise.all(
    workers.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }),
  );
}

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
          const pid = Number(job?.processedBy?.replace('worker-', ''));
          const victim = workers.find((child) => child.pid === pid)!;
          killed = pid;
          victim.kill('SIGKILL');
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

function jobIdOf(unit: Unit): string {
  return prepareUnit(unit).id;
}
