/**
 * The environment a queue worker gives its sandboxed processors (apart from the processor, so that the worker
 * process imports these names without the processor's start-up).
 */
export const PROCESSOR_ENV = {
  catalogue: 'DECOMPOSE_JOBS_CATALOGUE',
  url: 'DECOMPOSE_JOBS_REDIS_URL',
  queue: 'DECOMPOSE_JOBS_QUEUE',
  maxBlobBytes: 'DECOMPOSE_JOBS_MAX_BLOB_BYTES',
} as const;
