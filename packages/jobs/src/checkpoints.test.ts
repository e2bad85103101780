import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointPrefix, redisCheckpointStore } from './checkpoints.js';
import type { Executor } from './executor.js';
import { resumableSum } from './fixtures/checkpoint-catalogue.js';
import { localExecutor } from './local.js';
import { queueExecutor } from './queue.js';
import {
  killQueueWorkerProcesses,
  type RedisServer,
  startQueueWorkerProcess,
  startRedisServer,
} from './testing.js';
import { prepareUnit, type UnitProgress } from './unit.js';

const catalogue = new URL('./fixtures/checkpoint-catalogue.ts', import.meta.url);

const interrupted = resumableSum.unit({ seed: 5, steps: 6, failAt: 2 });
const uninterrupted = resumableSum.unit({ seed: 5, steps: 6 });

/** Runs one unit and collects where each of its progress reports says the run started. */
async function runOne(executor: Executor, unit = interrupted) {
  const resumedFrom: number[] = [];
  const [outcome] = await executor.run([unit], {
    onProgress: (_index, progress: UnitProgress) => {
      if (typeof progress !== 'number') resumedFrom.push(progress.resumedFrom as number);
    },
  });
  return { outcome, resumedFrom: [...new Set(resumedFrom)] };
}

describe('unit checkpoints on the local back ends', () => {
  for (const threads of [0, 2]) {
    it(`keep a unit's progress for its next run, and clear it once it completes (threads: ${threads})`, async () => {
      const executor = await localExecutor({ catalogue, threads });
      const [expected] = await executor.run([uninterrupted]);
      const first = await runOne(executor);
      expect(first.outcome).toEqual({
        ok: false,
        error: { name: 'Error', message: 'interrupted after step 2' },
      });
      expect(first.resumedFrom).toEqual([0]);
      const second = await runOne(executor);
      expect(second.resumedFrom).toEqual([2]);
      expect(second.outcome).toEqual(expected);
      // Cleared on completion: the next run starts afresh, so it is interrupted again.
      expect((await runOne(executor)).resumedFrom).toEqual([0]);
      await executor.close();
    });
  }

  it('refuses a checkpoint above the size limit, in this thread and in a worker thread', async () => {
    for (const threads of [0, 1]) {
      const executor = await localExecutor({ catalogue, threads, maxBlobBytes: 100 });
      const [outcome] = await executor.run([resumableSum.unit({ seed: 1, steps: 1, pad: 100 })]);
      expect(outcome).toMatchObject({ ok: false, error: { name: 'CheckpointTooLargeError' } });
      expect(outcome?.ok === false && outcome.error.message).toContain('limit of 100 bytes');
      await executor.close();
    }
  });
});

describe('unit checkpoints on the queue back end', () => {
  let redis: RedisServer;

  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    killQueueWorkerProcesses();
    await redis?.stop();
  });

  it("resume a retried job from the failed attempt's checkpoint in Redis, cleared once it completes", async () => {
    const queue = 'checkpoints';
    await startQueueWorkerProcess({ url: redis.url, queue, catalogue });
    const executor = await queueExecutor({ url: redis.url, queue, catalogue, attempts: 2, backoffMs: 50 });
    const local = await localExecutor({ catalogue });
    const [expected] = await local.run([uninterrupted]);
    await local.close();

    const { outcome, resumedFrom } = await runOne(executor);
    // The first attempt (from step 0) threw after step 2; BullMQ's retry read its checkpoint.
    expect(resumedFrom).toEqual([0, 2]);
    expect(outcome).toEqual(expected);
    const client = new Redis(redis.url);
    expect(await client.exists(`${checkpointPrefix(queue)}${prepareUnit(interrupted).id}`)).toBe(0);
    client.disconnect();
    await executor.close();
  }, 30_000);

  it("keeps a unit's checkpoint the queue's retention after each write, as long as a failed job stays", async () => {
    const client = new Redis(redis.url);
    const prefix = 'retention:checkpoint:';
    const store = redisCheckpointStore(client, { prefix, maxBytes: 100, retentionSeconds: 5 });
    await store.write('u1', new Uint8Array([1, 2, 3]));
    expect(await client.pttl(`${prefix}u1`)).toBeGreaterThan(0);
    expect(await client.pttl(`${prefix}u1`)).toBeLessThanOrEqual(5_000);
    expect(await store.read('u1')).toEqual(new Uint8Array([1, 2, 3]));
    client.disconnect();
  });
});
