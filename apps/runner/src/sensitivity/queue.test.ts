import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBundledSubset } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { freePort, type RedisServer, startRedisServer } from '@decompose/jobs/testing';
import { saveModel } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import type { SensitivityTable } from '@decompose/sensitivity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killStartedCli, startCli, startWorker, stopCli, waitFor } from '../test-cli.js';

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
    const run = startCli(scanArgs(path.join(dir, 'local'), '--workers', '0'));
    expect(await run.exited, run.output.stderr).toBe(0);
    local = await content(path.join(dir, 'local'));
  });

  afterAll(async () => {
    killStartedCli();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the local run’s table with 2 workers, and again when one is killed (kill -9) mid-scan', async () => {
    expect(local.entries).toHaveLength(12);
    const workers = [await startWorker(redis.url, 'scan'), await startWorker(redis.url, 'scan')];

    const queued = startCli(scanArgs(path.join(dir, 'queued'), '--queue', redis.url, '--queue-name', 'scan'));
    expect(await queued.exited, queued.output.stderr).toBe(0);
    expect(queued.output.stdout).toMatch(/through queue 'scan' at redis:\/\//);
    expect(await content(path.join(dir, 'queued'))).toEqual(local);
    // Each worker logged its jobs: the unit kind, the layer and the seconds.
    const logged = workers.map((w) => w.output.stdout.match(/scan-layer \S+: done in \d+\.\d+s/g) ?? []);
    expect(logged.flat()).toHaveLength(6);

    // Another queue, so that no finished job is reused: one worker dies right after its first job.
    const again = startCli(scanArgs(path.join(dir, 'killed'), '--queue', redis.url, '--queue-name', 'scan2'));
    const survivors = [await startWorker(redis.url, 'scan2'), await startWorker(redis.url, 'scan2')];
    const victim = survivors[0]!;
    await waitFor(() => victim.output.stdout, /scan-layer \S+: done/, 60_000);
    victim.child.kill('SIGKILL');
    expect(await again.exited, again.output.stderr).toBe(0);
    expect(await content(path.join(dir, 'killed'))).toEqual(local);

    expect(await stopCli([...workers, survivors[1]!])).toEqual([0, 0, 0]);
  });

  it('fails with exit 2 and an error naming the URL when Redis is unreachable, writing nothing', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const out = path.join(dir, 'unreachable');
    const run = startCli(scanArgs(out, '--queue', url));
    expect(await run.exited).toBe(2);
    expect(run.output.stderr).toMatch(new RegExp(`^error: .*${url.replace(/[.:/]/g, '\\$&')}`, 'm'));
    await expect(access(out)).rejects.toThrow();

    const worker = startCli(['worker', '--queue', url]);
    expect(await worker.exited).toBe(2);
    expect(worker.output.stderr).toContain(url);
  });
});
