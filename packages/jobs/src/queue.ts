import { Queue, QueueEvents } from 'bullmq';
import { blobIdsIn, DEFAULT_RETENTION_SECONDS, redisBlobStore, retentionMs } from './blobs.js';
import { type CatalogueRef, loadCatalogue } from './catalogue.js';
import { BlobNotFoundError, ExecutorClosedError, JobsOptionError, RedisUnreachableError } from './errors.js';
import { decodeFailure, type Executor, failureOf, type RunOptions, type UnitOutcome } from './executor.js';
import { createRedis, DEFAULT_CONNECT_TIMEOUT_MS, probeRedis, redactUrl } from './redis.js';
import {
  checkResult,
  dispatchOrder,
  type JsonValue,
  type PreparedUnit,
  prepareUnit,
  type ResultOf,
  type Unit,
  type UnitProgress,
} from './unit.js';

/** What a job carries: the unit, prepared (its input parsed and in JSON form), and its queue's retention. */
export interface JobData {
  kind: string;
  version: string;
  input: JsonValue;
  /**
   * How long the blobs and checkpoint the unit writes stay after their last use (seconds): the coordinator's
   * `retentionSeconds`. Absent in jobs of older versions, which then get {@link DEFAULT_RETENTION_SECONDS}.
   */
  retentionSeconds?: number;
}

/** Options of {@link queueExecutor}. */
export interface QueueExecutorOptions {
  /** `redis://HOST:PORT[/DB]` (`rediss://` for TLS; a password as `redis://:PASSWORD@HOST:PORT`). */
  url: string;
  /** The BullMQ queue's name; workers started with {@link runQueueWorker} on the same name run its units. */
  queue: string;
  /** When given, units whose kind (or version) is not in it are reported before anything is enqueued. */
  catalogue?: CatalogueRef;
  /** Tries per unit before it fails for good (≥ 2; default 3). A worker killed mid-job does not use up a try. */
  attempts?: number;
  /** The first retry's delay; later ones double it (ms, default 1000). */
  backoffMs?: number;
  /** How long the first connection may take before {@link RedisUnreachableError} (ms, default 3000). */
  connectTimeoutMs?: number;
  /** Job states are also polled this often, a safety net under the event stream (ms, default 2000). */
  pollIntervalMs?: number;
  /** The largest blob the store takes (default and cap: 512 MB, Redis's string limit). */
  maxBlobBytes?: number;
  /** A run rejects with {@link RedisUnreachableError} when Redis stops answering for this long (ms, default 30000). */
  redisDownTimeoutMs?: number;
  /**
   * The queue's one retention rule (seconds, default {@link DEFAULT_RETENTION_SECONDS}, 7 days): a finished job
   * stays this long after it finished (so a restarted coordinator re-attaches to it), and every blob and unit
   * checkpoint that this executor or its workers write stays this long after its last put or read. Nothing
   * needs deleting, and nothing stays for good.
   */
  retentionSeconds?: number;
}

/** BullMQ's lowest job priority (1 is the highest); ranks past it share it. */
const MAX_PRIORITY = 2_097_151;

/** Where a queue's blobs live in Redis: one string per blob under this prefix. */
export function blobPrefix(queue: string): string {
  return `decompose-jobs:${queue}:blob:`;
}

/** BullMQ's limit, and ours: the queue name is part of every key. */
function checkQueueName(queue: string): void {
  if (!/^[\w.-]+$/.test(queue)) {
    throw new JobsOptionError(
      'queue',
      `'${queue}' must be letters, digits, '_', '.' or '-' (it is part of Redis keys)`,
    );
  }
}

/**
 * The queue back end: enqueues units as BullMQ jobs whose ids are the units' identities, and follows them
 * through BullMQ's event stream until each completes or fails for good. Units already in the queue are not
 * added again: completed ones return their stored result without running, active and waiting ones are
 * awaited, failed ones are retried. Throws {@link RedisUnreachableError} (before writing anything) when Redis
 * does not answer within `connectTimeoutMs`.
 */
export async function queueExecutor(options: QueueExecutorOptions): Promise<Executor> {
  const { url, queue: name } = options;
  checkQueueName(name);
  const attempts = options.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 2) {
    throw new JobsOptionError(
      'attempts',
      `must be a whole number ≥ 2 (a retry survives a flaky worker), not ${attempts}`,
    );
  }
  const retentionSeconds = options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  retentionMs(retentionSeconds);
  // BullMQ ages finished jobs in whole seconds.
  const keepJobs = { age: Math.ceil(retentionSeconds) };
  const catalogue = options.catalogue === undefined ? undefined : await loadCatalogue(options.catalogue);
  await probeRedis(url, options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);

  let lastRedisError: Error | undefined;
  const onError = (error: Error) => {
    lastRedisError = error;
  };
  const client = createRedis(url, { blocking: false, onError });
  const eventsClient = createRedis(url, { blocking: true, onError });
  const queue = new Queue<JobData, JsonValue>(name, { connection: client });
  queue.on('error', onError);
  // Start reading events after the stream's last entry as it is now, so that no event of a job added from here
  // on is missed, however late the blocking read starts.
  const [last] = (await client.xrevrange(queue.toKey('events'), '+', '-', 'COUNT', 1)) as [
    string,
    string[],
  ][];
  const events = new QueueEvents(name, { connection: eventsClient, lastEventId: last?.[0] ?? '0-0' });
  events.on('error', onError);
  await events.waitUntilReady();
  const blobs = redisBlobStore(client, {
    prefix: blobPrefix(name),
    retentionSeconds,
    ...(options.maxBlobBytes === undefined ? {} : { maxBytes: options.maxBlobBytes }),
  });
  const pollIntervalMs = options.pollIntervalMs ?? 2_000;
  const redisDownTimeoutMs = options.redisDownTimeoutMs ?? 30_000;
  let closed = false;

  /** One run's bookkeeping of a job: the units (positions) waiting on it. */
  interface Followed {
    prepared: PreparedUnit;
    indices: number[];
    settled: boolean;
    /** A look at the job is under way (events and the poll both ask): a second ask makes it look again after. */
    reading: boolean;
    again: boolean;
    /** This run sent the completed job back to run again, because a blob its result names was gone. */
    rerun: boolean;
  }

  async function run<U extends Unit>(units: readonly U[], runOptions: RunOptions<U> = {}) {
    if (closed) throw new ExecutorClosedError();
    const { onProgress, onResult, signal } = runOptions;
    signal?.throwIfAborted();
    const outcomes = new Array<UnitOutcome<ResultOf<U>>>(units.length);
    const followed = new Map<string, Followed>();
    let open = 0;
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const report = (index: number, outcome: UnitOutcome<ResultOf<U>>) => {
      outcomes[index] = outcome;
      onResult?.(index, outcome, units[index]!);
    };

    units.forEach((unit, index) => {
      try {
        const prepared = prepareUnit(unit);
        catalogue?.get(prepared.kind, prepared.version);
        const entry = followed.get(prepared.id);
        if (entry) entry.indices.push(index);
        else {
          followed.set(prepared.id, {
            prepared,
            indices: [index],
            settled: false,
            reading: false,
            again: false,
            rerun: false,
          });
          open++;
        }
      } catch (error) {
        report(index, { ok: false, error: failureOf(error) });
      }
    });

    const settle = (id: string, outcome: (unit: U) => UnitOutcome<ResultOf<U>>) => {
      const entry = followed.get(id);
      if (!entry || entry.settled) return;
      entry.settled = true;
      for (const index of entry.indices) report(index, outcome(units[index]!));
      if (--open === 0) finish();
    };
    /**
     * Settles a job that has finished for good; leaves the others (waiting, active, retrying) alone. A completed
     * job whose result names a blob that is gone (past its retention, or deleted) is sent back to run again, once
     * per run: its result is worth nothing without the blob, and the unit is a pure function of its input.
     */
    const readFinished = async (entry: Followed, id: string) => {
      const snapshot = await queue.getJob(id);
      if (!snapshot) return;
      const state = await snapshot.getState();
      if (state !== 'completed' && state !== 'failed') return;
      // Read again now that it has finished: the snapshot may predate the move, with no result or reason yet
      // (seen as a null result when a job completed between getJob and getState).
      const job = await queue.getJob(id);
      if (!job) return;
      if (state === 'failed') {
        const failure = decodeFailure(job.failedReason);
        settle(id, () => ({ ok: false, error: failure }));
        return;
      }
      const { kind } = units[entry.indices[0]!]!;
      let named: string[];
      try {
        named = blobIdsIn(kind.result, checkResult(kind, job.returnvalue));
      } catch (error) {
        settle(id, () => ({ ok: false, error: failureOf(error) }));
        return;
      }
      // Asking for the blobs also keeps them another retention: the result is in use again.
      const present = await Promise.all(named.map((blob) => blobs.has(blob)));
      const missing = named.filter((_, i) => !present[i]);
      if (missing.length === 0) {
        settle(id, (unit) => ({ ok: true, result: checkResult(unit.kind, job.returnvalue) as ResultOf<U> }));
      } else if (entry.rerun) {
        settle(id, () => ({ ok: false, error: failureOf(new BlobNotFoundError(missing[0]!)) }));
      } else {
        entry.rerun = true;
        // Another coordinator may have sent it back first (it is no longer completed then): follow it as it is.
        await job.retry('completed', { resetAttemptsMade: true }).catch(async (error: unknown) => {
          if ((await job.getState()) === 'completed') throw error;
        });
      }
    };
    const settleFinished = async (id: string) => {
      const entry = followed.get(id);
      if (!entry || entry.settled) return;
      if (entry.reading) {
        entry.again = true;
        return;
      }
      entry.reading = true;
      try {
        do {
          entry.again = false;
          await readFinished(entry, id);
        } while (entry.again && !entry.settled);
      } finally {
        entry.reading = false;
      }
    };

    const onCompletedOrFailed = ({ jobId }: { jobId: string }) => {
      // Its reads may outlive the run (the connection closing under them): a failure is recorded, never thrown.
      if (followed.has(jobId)) settleFinished(jobId).catch(onError);
    };
    const onJobProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
      const entry = followed.get(jobId);
      if (!entry || entry.settled) return;
      for (const index of entry.indices) onProgress?.(index, data as UnitProgress, units[index]!);
    };
    events.on('completed', onCompletedOrFailed);
    events.on('failed', onCompletedOrFailed);
    events.on('progress', onJobProgress);
    let aborted: (reason: unknown) => void = () => {};
    const abortedPromise = new Promise<never>((_resolve, reject) => {
      aborted = reject;
    });
    const abort = () => aborted(signal?.reason);
    signal?.addEventListener('abort', abort, { once: true });
    let poll: NodeJS.Timeout | undefined;
    let polling: Promise<void> | undefined;

    try {
      if (open === 0) return outcomes;
      // Re-attach: jobs that exist are taken as they are (a failed one is retried: running the same units again
      // asks for them again); only the missing ones are added, in one atomic MULTI.
      const missing: Followed[] = [];
      await Promise.all(
        [...followed].map(async ([id, entry]) => {
          const job = await queue.getJob(id);
          if (job === undefined) missing.push(entry);
          else if ((await job.getState()) === 'failed')
            await job.retry('failed', { resetAttemptsMade: true });
          else await settleFinished(id);
        }),
      ).catch(redisFailure);
      // Dearest first: BullMQ starts lower priorities first (FIFO among equals), and a unit's rank by cost is its
      // priority. Without costs the jobs stay unprioritized, in input order.
      const prioritized = missing.some(({ prepared }) => prepared.cost > 0);
      await queue
        .addBulk(
          dispatchOrder(missing.map(({ prepared }) => prepared))
            .map((position) => missing[position]!.prepared)
            .map((prepared, rank) => ({
              name: prepared.kind,
              data: {
                kind: prepared.kind,
                version: prepared.version,
                input: prepared.input,
                retentionSeconds,
              },
              opts: {
                jobId: prepared.id,
                ...(prioritized ? { priority: Math.min(rank + 1, MAX_PRIORITY) } : {}),
                attempts,
                backoff: { type: 'exponential', delay: options.backoffMs ?? 1_000 },
                // Kept for the retention, so that a restarted coordinator finds the results instead of running the
                // units again (BullMQ removes older finished jobs as later ones finish).
                removeOnComplete: keepJobs,
                removeOnFail: keepJobs,
              },
            })),
        )
        .catch(redisFailure);
      const pollOnce = async () => {
        for (const [id, entry] of followed) {
          if (!entry.settled) await settleFinished(id);
        }
      };
      // The poll also watches Redis: when it keeps failing, the run ends with an error instead of waiting forever.
      let failingSince: number | undefined;
      poll = setInterval(() => {
        // One poll at a time: a slow Redis does not pile them up, and the run waits for the last one to end.
        if (polling !== undefined) return;
        polling = pollOnce()
          .then(
            () => {
              failingSince = undefined;
            },
            (error: Error) => {
              failingSince ??= Date.now();
              if (Date.now() - failingSince >= redisDownTimeoutMs) {
                aborted(new RedisUnreachableError(redactUrl(url), `it stopped answering (${error.message})`));
              }
            },
          )
          .finally(() => {
            polling = undefined;
          });
      }, pollIntervalMs);
      await pollOnce().catch(redisFailure);
      await Promise.race([done, abortedPromise]);
      return outcomes;
    } finally {
      clearInterval(poll);
      await polling;
      signal?.removeEventListener('abort', abort);
      events.off('completed', onCompletedOrFailed);
      events.off('failed', onCompletedOrFailed);
      events.off('progress', onJobProgress);
    }
  }

  function redisFailure(error: unknown): never {
    throw new RedisUnreachableError(
      redactUrl(url),
      (error as Error).message ?? lastRedisError?.message ?? 'unknown',
    );
  }

  return {
    blobs,
    run,
    async close() {
      if (closed) return;
      closed = true;
      await events.close();
      await queue.close();
      client.disconnect();
      eventsClient.disconnect();
    },
  };
}
