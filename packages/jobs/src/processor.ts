// BullMQ's sandboxed processor: runs in a child process of a queue worker (runQueueWorker), so that a long
// synchronous step of a unit (a tfjs kernel) cannot stall the worker's lock renewal. Imports the catalogue
// named in its environment and dispatches each job by kind.
import type { SandboxedJob } from 'bullmq';
import { redisBlobStore } from './blobs.js';
import { type Catalogue, loadCatalogue } from './catalogue.js';
import { UnitInputError, UnitResultError } from './errors.js';
import { encodeFailure, failureOf } from './executor.js';
import type { JobData } from './queue.js';
import { blobPrefix } from './queue.js';
import { createRedis } from './redis.js';
import { executeUnit, type JsonValue } from './unit.js';

/** The environment a queue worker gives its sandboxed processors. */
export const PROCESSOR_ENV = {
  catalogue: 'DECOMPOSE_JOBS_CATALOGUE',
  url: 'DECOMPOSE_JOBS_REDIS_URL',
  queue: 'DECOMPOSE_JOBS_QUEUE',
  maxBlobBytes: 'DECOMPOSE_JOBS_MAX_BLOB_BYTES',
} as const;

// A child whose worker was killed (kill -9) loses its IPC channel: end it, or it would go on computing a job
// that another worker now owns.
if (process.send !== undefined) process.once('disconnect', () => process.exit(1));

let setup: Promise<{ catalogue: Catalogue; blobs: ReturnType<typeof redisBlobStore> }> | undefined;

function load() {
  setup ??= (async () => {
    const env = (name: string) => {
      const value = process.env[name];
      if (value === undefined)
        throw new Error(`${name} is not set: start this processor through runQueueWorker`);
      return value;
    };
    const catalogue = await loadCatalogue(env(PROCESSOR_ENV.catalogue));
    const redis = createRedis(env(PROCESSOR_ENV.url), { blocking: false });
    const maxBytes = Number(process.env[PROCESSOR_ENV.maxBlobBytes]);
    const blobs = redisBlobStore(redis, {
      prefix: blobPrefix(env(PROCESSOR_ENV.queue)),
      ...(Number.isFinite(maxBytes) && maxBytes > 0 ? { maxBytes } : {}),
    });
    return { catalogue, blobs };
  })();
  return setup;
}

/** Runs one job's unit; failures carry their class name in the message, see {@link encodeFailure}. */
export default async function processor(
  job: SandboxedJob<JobData, JsonValue>,
  _token?: string,
  signal?: AbortSignal,
): Promise<JsonValue> {
  try {
    const { catalogue, blobs } = await load();
    const { kind, version, input } = job.data;
    return await executeUnit(catalogue.get(kind, version), input, {
      reportProgress: (progress) => {
        job.updateProgress(progress).catch(() => {});
      },
      signal: signal ?? new AbortController().signal,
      blobs,
    });
  } catch (error) {
    const failure = new Error(encodeFailure(failureOf(error)));
    // A unit is a pure function of its input: a bad input or result would be bad again, so it is not retried
    // (BullMQ recognises the name). Anything else (a throw, a lost connection) gets the job's remaining tries.
    if (error instanceof UnitInputError || error instanceof UnitResultError)
      failure.name = 'UnrecoverableError';
    throw failure;
  }
}
