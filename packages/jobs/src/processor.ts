// BullMQ's sandboxed processor: runs in a child process of a queue worker (runQueueWorker), so that a long
// synchronous step of a unit (a tfjs kernel) cannot stall the worker's lock renewal. Imports the catalogue
// named in its environment as soon as it starts (the worker starts it with the worker, before any job), and
// dispatches each job by kind.
import type { SandboxedJob } from 'bullmq';
import { type BlobStore, DEFAULT_RETENTION_SECONDS, MAX_BLOB_BYTES, redisBlobStore } from './blobs.js';
import { loadCatalogue } from './catalogue.js';
import {
  type CheckpointStore,
  checkpointPrefix,
  redisCheckpointStore,
  unitCheckpoint,
} from './checkpoints.js';
import { UnitInputError, UnitResultError } from './errors.js';
import { encodeFailure, failureOf } from './executor.js';
import { PROCESSOR_ENV } from './processor-env.js';
import type { JobData } from './queue.js';
import { blobPrefix } from './queue.js';
import { createRedis } from './redis.js';
import { executeUnit, type JsonValue, unitId } from './unit.js';

// A child whose worker was killed (kill -9) loses its IPC channel: end it, or it would go on computing a job
// that another worker now owns.
if (process.send !== undefined) process.once('disconnect', () => process.exit(1));

/** What every job of this process shares: the catalogue and a connection to the queue's Redis. */
async function load() {
  const env = (name: string) => {
    const value = process.env[name];
    if (value === undefined)
      throw new Error(`${name} is not set: start this processor through runQueueWorker`);
    return value;
  };
  const catalogue = await loadCatalogue(env(PROCESSOR_ENV.catalogue));
  const redis = createRedis(env(PROCESSOR_ENV.url), { blocking: false });
  const given = Number(process.env[PROCESSOR_ENV.maxBlobBytes]);
  const maxBytes = Number.isFinite(given) && given > 0 ? Math.min(given, MAX_BLOB_BYTES) : MAX_BLOB_BYTES;
  return { catalogue, redis, maxBytes, queue: env(PROCESSOR_ENV.queue) };
}

// Awaited on import: BullMQ reports the child started once the catalogue's imports (tfjs, the pipeline) are done,
// and the worker starts its children with itself, so that no job waits for them. A failure is each job's error.
const setup = await load().then(
  (loaded) => ({ loaded }),
  (error: unknown) => ({ error }),
);

/** The stores of one job: its blobs and checkpoint stay as long as the coordinator's retention, which it carries. */
function storesOf(
  { redis, maxBytes, queue }: Awaited<ReturnType<typeof load>>,
  job: SandboxedJob<JobData, JsonValue>,
): { blobs: BlobStore; checkpoints: CheckpointStore } {
  const retentionSeconds = job.data.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  return {
    blobs: redisBlobStore(redis, { prefix: blobPrefix(queue), maxBytes, retentionSeconds }),
    checkpoints: redisCheckpointStore(redis, { prefix: checkpointPrefix(queue), maxBytes, retentionSeconds }),
  };
}

/** Runs one job's unit; failures carry their class name in the message, see {@link encodeFailure}. */
export default async function processor(
  job: SandboxedJob<JobData, JsonValue>,
  _token?: string,
  signal?: AbortSignal,
): Promise<JsonValue> {
  try {
    if ('error' in setup) throw setup.error;
    const { loaded } = setup;
    const { catalogue } = loaded;
    const { blobs, checkpoints } = storesOf(loaded, job);
    const { kind, version, input } = job.data;
    // The unit's identity (the job id the coordinator gave it), computed again rather than trusted.
    const unit = unitId(kind, version, input);
    const result = await executeUnit(catalogue.get(kind, version), input, {
      reportProgress: (progress) => {
        job.updateProgress(progress).catch(() => {});
      },
      signal: signal ?? new AbortController().signal,
      blobs,
      checkpoint: unitCheckpoint(checkpoints, unit),
    });
    // Cleared before the result is stored: a worker killed in between costs a re-run, never a wrong result.
    // A failed clear only leaves the bytes behind, so it does not fail a unit that completed.
    await checkpoints.clear(unit).catch(() => {});
    return result;
  } catch (error) {
    const failure = new Error(encodeFailure(failureOf(error)));
    // A unit is a pure function of its input: a bad input or result would be bad again, so it is not retried
    // (BullMQ recognises the name). Anything else (a throw, a lost connection) gets the job's remaining tries.
    if (error instanceof UnitInputError || error instanceof UnitResultError)
      failure.name = 'UnrecoverableError';
    throw failure;
  }
}
