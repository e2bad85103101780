import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBundledSubset } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { freePort, type RedisServer, startRedisServer } from '@decompose/jobs/testing';
import { saveModel } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import type { SensitivityTable } from '@decompose/sensitivity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The CLI runs from its TypeScript sources in child processes (as in errors.test.ts): coordinators and
// `decompose worker` processes meet only through a real redis-server.
const sourceCli = fileURLToPath(new URL('../cli.ts', import.meta.url));
const sourceHooks = new URL(import.meta.resolve('@decompose/engine/source-hooks'));
const sourceNodeArgs = [
  '--conditions=@decompose/source',
  '--import',
  `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(sourceHooks.href)})`,
  sourceCli,
];

const children: ChildProcess[] = [];

/** Starts the CLI; `output` collects stdout and stderr as they come. */
function cli(args: string[]) {
  const child = spawn(process.execPath, [...sourceNodeArgs, ...args], {
    env: { ...process.env, CI: 'true' },
  });
  children.push(child);
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => {
    output.stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output.stderr += chunk.toString();
  });
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  return { child, output, exited };
}

/** Resolves once `read()` matches `pattern`, polling; rejects after `ms`. */
async function waitFor(read: () => string, pattern: RegExp, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!pattern.test(read())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${pattern}; got:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A `decompose worker` process on the queue, once it takes jobs. */
async function startWorker(url: string, queue: string) {
  const worker = cli(['worker', '--queue', url, '--queue-name', queue, '--concurrency', '1']);
  await waitFor(() => worker.output.stdout + worker.output.stderr, /taking units from queue/, 60_000);
  return worker;
}

/** A table without its wall time, which is all that may differ between runs. */
const content = async (dir: string) => {
  const { seconds: _, ...rest } = JSON.parse(
    await readFile(path.join(dir, 'sensitivity.json'), 'utf8'),
  ) as SensitivityTable;
  return rest;
};

describe('decompose sensitivity --queue with decompose worker processes', () => {
  let dir: string;
  let modelDir: string;
  let redis: RedisServer;
  let local: Awaited<ReturnType<typeof content>>;
  const scanArgs = (out: string, ...extra: string[]) => [
    'sensitivity',
    '--model-dir',
    modelDir,
    '--strategy',
    'svd',
    '--ratios',
    '0.25,0.5',
    '--layers',
    'stage2.block1.conv1,stage2.block2.conv2,stage3.block1.conv1,stage3.block2.conv2,stage3.block3.conv1,head.fc',
    '--calibration',
    '32',
    '--data',
    findBundledSubset(),
    '--limit-train',
    '96',
    '--limit-test',
    '8',
    '--out',
    out,
    ...extra,
  ];

  beforeAll(async () => {
    await initEngine();
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-queue-scan-'));
    modelDir = path.join(dir, 'run', 'model');
    const model = createCifarResNet({ arch: 'resnet20', seed: 5 });
    await saveModel(model, modelDir);
    model.dispose();
    await writeFile(path.join(dir, 'run', 'summary.json'), JSON.stringify({ config: { seed: 7 } }));
    redis = await startRedisServer();
    const run = cli(scanArgs(path.join(dir, 'local'), '--workers', '0'));
    expect(await run.exited, run.output.stderr).toBe(0);
    local = await content(path.join(dir, 'local'));
  });

  afterAll(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the local run’s table with 2 workers, and again when one is killed (kill -9) mid-scan', async () => {
    expect(local.entries).toHaveLength(12);
    const workers = [await startWorker(redis.url, 'scan'), await startWorker(redis.url, 'scan')];

    const queued = cli(scanArgs(path.join(dir, 'queued'), '--queue', redis.url, '--queue-name', 'scan'));
    expect(await queued.exited, queued.output.stderr).toBe(0);
    expect(queued.output.stdout).toMatch(/through queue 'scan' at redis:\/\//);
    expect(await content(path.join(dir, 'queued'))).toEqual(local);
    // Each worker logged its jobs: the unit kind, the layer and the seconds.
    const logged = workers.map((w) => w.output.stdout.match(/scan-layer \S+: done in \d+\.\d+s/g) ?? []);
    expect(logged.flat()).toHaveLength(6);

    // Another queue, so that no finished job is reused: one worker dies right after its first job.
    const again = cli(scanArgs(path.join(dir, 'killed'), '--queue', redis.url, '--queue-name', 'scan2'));
    const survivors = [await startWorker(redis.url, 'scan2'), await startWorker(redis.url, 'scan2')];
    const victim = survivors[0]!;
    await waitFor(() => victim.output.stdout, /scan-layer \S+: done/, 60_000);
    victim.child.kill('SIGKILL');
    expect(await again.exited, again.output.stderr).toBe(0);
    expect(await content(path.join(dir, 'killed'))).toEqual(local);

    for (const w of [...workers, survivors[1]!]) w.child.kill('SIGTERM');
    for (const w of [...workers, survivors[1]!]) expect(await w.exited).toBe(0);
  });

  it('fails with exit 2 and an error naming the URL when Redis is unreachable, writing nothing', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const out = path.join(dir, 'unreachable');
    const run = cli(scanArgs(out, '--queue', url));
    expect(await run.exited).toBe(2);
    expect(run.output.stderr).toMatch(new RegExp(`^error: .*${url.replace(/[.:/]/g, '\\$&')}`, 'm'));
    await expect(access(out)).rejects.toThrow();

    const worker = cli(['worker', '--queue', url]);
    expect(await worker.exited).toBe(2);
    expect(worker.output.stderr).toContain(url);
  });
});
