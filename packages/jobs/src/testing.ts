// Test helpers: a real redis-server for tests of the queue back end (never a mock of BullMQ or Redis).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { type CatalogueRef, catalogueUrl } from './catalogue.js';
import { JobsError } from './errors.js';
import { blobPrefix, type JobData } from './queue.js';
import { createRedis, probeRedis } from './redis.js';

/** `redis-server` is not installed, or it did not start. */
export class RedisServerError extends JobsError {
  override readonly name = 'RedisServerError';
  constructor(readonly problem: string) {
    super(
      `${problem}. The queue tests need Debian's redis-server: run 'bash .ci/install-redis.sh' (as root) ` +
        'from the repository root, as CI does.',
    );
  }
}

/** A redis-server started by {@link startRedisServer}. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Stops the server and removes its folder. */
  stop(): Promise<void>;
}

/** A port nothing listens on right now (the kernel picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from the kernel');
  return address.port;
}

/**
 * Starts `redis-server` on 127.0.0.1 at a free port, without persistence, in a temporary folder, and waits
 * until it answers. Throws {@link RedisServerError}, naming `.ci/install-redis.sh`, when it is not installed.
 */
export async function startRedisServer(options: { timeoutMs?: number } = {}): Promise<RedisServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'decompose-redis-'));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  });
  const exited = new Promise<Error>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) =>
      resolve(
        new RedisServerError(
          error.code === 'ENOENT'
            ? 'redis-server is not on PATH'
            : `redis-server did not start (${error.message})`,
        ),
      ),
    );
    child.once('exit', (code) =>
      resolve(new RedisServerError(`redis-server exited with code ${code}: ${output.trim()}`)),
    );
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    const failed = await Promise.race([
      exited,
      probeRedis(url, 500).then(
        () => undefined,
        () => null,
      ),
    ]);
    if (failed instanceof Error) {
      await rm(dir, { recursive: true, force: true });
      throw failed;
    }
    if (failed === undefined) return { url, port, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new RedisServerError(
        `redis-server on port ${port} did not answer within ${options.timeoutMs ?? 10_000} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What BullMQ recorded of one job: enough to tell whether a coordinator's restart ran it again. */
export interface QueueJobRecord {
  /** The job id: the unit's id (`unitId`). */
  id: string;
  /** The unit's kind (`scan-layer`, `arm`, …). */
  kind: string;
  /** `completed`, `failed`, `active`, `waiting`, `delayed`, … */
  state: string;
  /** Tries that ended (a worker lost mid-job does not count). */
  attemptsMade: number;
  /** Tries that started. */
  attemptsStarted: number;
  /** When the latest try started (ms since the epoch). */
  processedOn: number | null;
  /** When it completed or failed for good. */
  finishedOn: number | null;
  /** The worker that ran the latest try. */
  processedBy: string | null;
}

/** Every job of queue `queue` on the Redis at `url`, as BullMQ records it, in id order. */
export async function readQueueJobs(url: string, queue: string): Promise<QueueJobRecord[]> {
  const client = createRedis(url, { blocking: false });
  const inspect = new Queue<JobData>(queue, { connection: client });
  try {
    const jobs = await inspect.getJobs();
    const records = await Promise.all(
      jobs.map(async (job) => ({
        id: job.id ?? '',
        kind: job.data.kind,
        state: await job.getState(),
        attemptsMade: job.attemptsMade,
        attemptsStarted: job.attemptsStarted,
        processedOn: job.processedOn ?? null,
        finishedOn: job.finishedOn ?? null,
        processedBy: job.processedBy ?? null,
      })),
    );
    return records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  } finally {
    await inspect.close();
    client.disconnect();
  }
}

/**
 * Removes every blob of queue `queue` on the Redis at `url`, as if their retention had passed, and resolves with
 * how many there were.
 */
export async function dropQueueBlobs(url: string, queue: string): Promise<number> {
  const client = createRedis(url, { blocking: false });
  try {
    let dropped = 0;
    for await (const keys of client.scanStream({ match: `${blobPrefix(queue)}*`, count: 100 })) {
      if ((keys as string[]).length > 0) dropped += await client.del(...(keys as string[]));
    }
    return dropped;
  } finally {
    client.disconnect();
  }
}

/** A queue worker process started by {@link startQueueWorkerProcess}. */
export interface QueueWorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Its worker's name, which BullMQ records as a job's `processedBy`: `worker-<pid>`. */
  readonly name: string;
  /** What it printed so far (stdout and stderr). */
  readonly output: () => string;
  /** Stops it with SIGTERM (it finishes its running job first) and resolves once it exited. */
  stop(): Promise<void>;
  /** Kills it at once (SIGKILL), as a lost machine: its job's lock expires and another worker takes it. */
  kill(): void;
}

const startedWorkers = new Set<QueueWorkerProcess>();

/**
 * Starts a queue worker ({@link runQueueWorker}) in a process of its own on `catalogue`, as a machine of its own
 * would run one, and resolves once it takes jobs. Its lock is short (`lockDurationMs` 1500, `stalledIntervalMs`
 * 500 by default), so that the job of a worker killed with {@link QueueWorkerProcess.kill} is taken back within
 * seconds. From the TypeScript sources (under vitest) it runs them too, through tsx.
 */
export async function startQueueWorkerProcess(options: {
  url: string;
  queue: string;
  catalogue: CatalogueRef;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Variables added to its environment (which its sandboxed children inherit). */
  env?: Record<string, string>;
}): Promise<QueueWorkerProcess> {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(
    new URL(fromSource ? './testing-worker.ts' : './testing-worker.js', import.meta.url),
  );
  const child = spawn(
    process.execPath,
    [
      ...(fromSource
        ? [
            '--conditions=@decompose/source',
            '--import',
            new URL('./source/register.mjs', import.meta.url).href,
          ]
        : []),
      entry,
      options.url,
      options.queue,
      catalogueUrl(options.catalogue),
      String(options.lockDurationMs ?? 1_500),
      String(options.stalledIntervalMs ?? 500),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } },
  );
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready')) resolve();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => reject(new Error(`the queue worker exited with ${code}: ${output}`)));
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const worker: QueueWorkerProcess = {
    child,
    pid: child.pid!,
    name: `worker-${child.pid}`,
    output: () => output,
    async stop() {
      if (running()) child.kill('SIGTERM');
      await exited;
      startedWorkers.delete(worker);
    },
    kill() {
      if (running()) child.kill('SIGKILL');
      startedWorkers.delete(worker);
    },
  };
  startedWorkers.add(worker);
  return worker;
}

/** Kills every worker {@link startQueueWorkerProcess} started that is still running: for a test file's `afterAll`. */
export function killQueueWorkerProcesses(): void {
  for (const worker of startedWorkers) worker.kill();
}
