import { type ChildPool, type Job, Worker } from 'bullmq';
import { MAX_BLOB_BYTES } from './blobs.js';
import { type CatalogueRef, loadCatalogue } from './catalogue.js';
import { JobsOptionError } from './errors.js';
import { PROCESSOR_ENV } from './processor-env.js';
import type { JobData } from './queue.js';
import { createRedis, DEFAULT_CONNECT_TIMEOUT_MS, probeRedis } from './redis.js';

/** Options of {@link runQueueWorker}. */
export interface QueueWorkerOptions {
  /** `redis://HOST:PORT[/DB]`, as the coordinator's {@link queueExecutor}. */
  url: string;
  /** The queue's name, as the coordinator's. */
  queue: string;
  /** The catalogue module (a file URL or absolute path) holding the kinds of the units it runs. */
  catalogue: CatalogueRef;
  /** Jobs at once, each in its own child process (default 1; one worker process per core is the usual setup). */
  concurrency?: number;
  /**
   * How long a job's lock lasts (ms, default 10000). The worker renews it every half of this; a worker that
   * dies stops renewing, and its job is taken back after at most this plus `stalledIntervalMs`.
   */
  lockDurationMs?: number;
  /** How often workers look for jobs whose lock expired (ms, default 5000). */
  stalledIntervalMs?: number;
  /** How many times a job may lose its worker before it fails for good (default 2). */
  maxStalledCount?: number;
  /** Close gracefully (finish the running jobs) on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
  /** The worker's name, stored on the jobs it takes (`processedBy`; default `<host>:<pid>`). */
  name?: string;
  /** The largest blob, and unit checkpoint, its units may write (default and cap: 512 MB). */
  maxBlobBytes?: number;
  /** Called with errors of the connection or of BullMQ (packages do not print; the app decides). */
  onError?: (error: Error) => void;
  /** Called as each job this worker ran finishes (packages do not print: an app logs it). */
  onJob?: (job: FinishedJob) => void;
}

/** A job a queue worker ran, as {@link QueueWorkerOptions.onJob} reports it. */
export interface FinishedJob {
  /** The unit's kind, version and input. */
  data: JobData;
  ok: boolean;
  /** The error's `Name: message` when it failed (it may be retried). */
  error?: string;
  /** From the job's start on this worker to its end. */
  seconds: number;
}

/** A running queue worker. */
export interface QueueWorker {
  /** Stops taking jobs, waits for the running ones, and closes the connection. */
  close(): Promise<void>;
  /** Resolves once the worker has closed (by {@link QueueWorker.close} or a signal). */
  readonly closed: Promise<void>;
  readonly name: string;
}

/**
 * Runs units from a queue: a BullMQ worker whose jobs run in a sandboxed processor (a child process that
 * imports the catalogue), so that long synchronous steps do not stall the lock. Throws
 * {@link RedisUnreachableError} when Redis does not answer, and {@link CatalogueError} when the catalogue does
 * not load (both before it takes a job).
 */
export async function runQueueWorker(options: QueueWorkerOptions): Promise<QueueWorker> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new JobsOptionError('concurrency', `must be a whole number ≥ 1, not ${concurrency}`);
  }
  // Loaded here as well as in the sandbox, so that a broken catalogue fails at start, not once per job.
  const catalogue = await loadCatalogue(options.catalogue);
  await probeRedis(options.url, DEFAULT_CONNECT_TIMEOUT_MS);
  const name = options.name ?? `${(await import('node:os')).hostname()}:${process.pid}`;
  const onError = options.onError ?? (() => {});
  const connection = createRedis(options.url, { blocking: true, onError });
  const fromSource = import.meta.url.endsWith('.ts');
  const processorFile = new URL(fromSource ? './source/processor.mjs' : './processor.js', import.meta.url);
  const worker = new Worker(options.queue, processorFile, {
    connection,
    name,
    concurrency,
    // Started below, once its sandboxed children are up.
    autorun: false,
    lockDuration: options.lockDurationMs ?? 10_000,
    stalledInterval: options.stalledIntervalMs ?? 5_000,
    maxStalledCount: options.maxStalledCount ?? 2,
    workerForkOptions: {
      env: {
        ...process.env,
        [PROCESSOR_ENV.catalogue]: catalogue.url,
        [PROCESSOR_ENV.url]: options.url,
        [PROCESSOR_ENV.queue]: options.queue,
        [PROCESSOR_ENV.maxBlobBytes]: String(options.maxBlobBytes ?? MAX_BLOB_BYTES),
      },
      // From sources, the child resolves workspace packages to their TypeScript too (the processor entry
      // registers tsx); BullMQ otherwise passes this process's own flags on.
      ...(fromSource ? { execArgv: [...process.execArgv, '--conditions=@decompose/source'] } : {}),
    },
  });
  worker.on('error', onError);
  const onJob = options.onJob;
  if (onJob !== undefined) {
    const report = (job: Job<JobData> | undefined, error?: Error) => {
      if (job === undefined) return;
      const seconds = ((job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now())) / 1000;
      onJob({ data: job.data, ok: error === undefined, ...(error ? { error: error.message } : {}), seconds });
    };
    worker.on('completed', (job) => report(job));
    worker.on('failed', (job, error) => report(job, error));
  }
  await worker.waitUntilReady();
  try {
    await startChildren(worker, processorFile, concurrency);
  } catch (error) {
    await worker.close();
    connection.disconnect();
    throw error;
  }
  worker.run().catch((error: Error) => onError(error));

  let closing: Promise<void> | undefined;
  let closedResolve: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    closedResolve = resolve;
  });
  const signals = options.handleSignals ?? true;
  const onSignal = () => void close();
  function close(): Promise<void> {
    closing ??= (async () => {
      if (signals) {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      await worker.close();
      connection.disconnect();
      closedResolve();
    })();
    return closing;
  }
  if (signals) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return { close, closed, name };
}

/**
 * Starts the worker's sandboxed children (one per concurrent job) now rather than at its first jobs, which would
 * otherwise wait for the fork and the catalogue's imports (1–2.5 s) on their clocks. BullMQ 6.7 starts a child
 * when a job asks its pool for one and keeps it for the next jobs once released: taking `concurrency` children
 * from the pool and releasing them leaves them started and free. The pool is the worker's own (`childPool`, not
 * in its public types, so it is reached here by name); without it nothing is started early.
 */
async function startChildren(worker: Worker, processorFile: URL, concurrency: number): Promise<void> {
  const pool = (worker as unknown as { childPool?: ChildPool }).childPool;
  if (pool === undefined) return;
  // The key BullMQ's sandbox asks the pool with: the processor's URL as a string.
  const children = await Promise.all(
    Array.from({ length: concurrency }, () => pool.retain(processorFile.href)),
  );
  for (const child of children) pool.release(child);
}
