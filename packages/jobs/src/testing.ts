// Test helpers: a real redis-server for tests of the queue back end (never a mock of BullMQ or Redis).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { JobsError } from './errors.js';
import type { JobData } from './queue.js';
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
