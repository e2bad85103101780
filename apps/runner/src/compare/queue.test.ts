import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBundledSubset } from '@decompose/cifar10';
import { type RedisServer, startRedisServer } from '@decompose/jobs/testing';
import { PIPELINE_QUEUE } from '@decompose/pipeline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { trainConfigSchema } from '../config.js';
import { Console } from '../progress.js';
import { runCommand } from '../test-command.js';
import { runTrain, type TrainSummary } from '../train.js';
import { registerCompareCommand } from './command.js';
import type { CompareResults } from './results.js';

const workerScript = fileURLToPath(new URL('./fixtures/queue-worker.ts', import.meta.url));
const failingPlugin = fileURLToPath(new URL('./fixtures/failing-plugin.mjs', import.meta.url));
// The jobs package's hook that lets a process run TypeScript sources (tests run from src/, not dist/).
const register = new URL('./source/register.mjs', import.meta.resolve('@decompose/jobs')).href;

/** Runs `decompose compare` in-process. */
const compare = (...argv: string[]) => runCommand(registerCompareCommand, 'compare', argv);

/** A tiny comparison: a baseline trained for one epoch on 48 images, two arms and one that always fails. */
const tinyConfig = {
  data: findBundledSubset(),
  limitTrain: 48,
  limitTest: 16,
  baseline: { model: 'resnet20', epochs: 1, batch: 16, lr: 0.05, workers: 0 },
  fineTune: { epochs: 1, batch: 16, lr: 0.01, bnImages: 16, workers: 0 },
  measure: { batch: 4, steps: 1 },
  arms: [
    { name: 'svd', strategy: 'svd', options: { ratio: 0.5 }, layers: ['stage3.block3.*'] },
    { name: 'broken', strategy: failingPlugin, options: { ratio: 0.5 }, layers: 'stage3.block2.conv1' },
    { name: 'tucker', strategy: 'tucker', options: { ratio: 0.5 }, layers: 'stage3.block1.conv1' },
  ],
};

/** The numbers of a report that do not depend on the clock. */
function numbers(results: CompareResults) {
  return {
    baseline: {
      accuracy: results.baseline.accuracy,
      loss: results.baseline.loss,
      params: results.baseline.params,
    },
    baselineLosses: results.baseline.epochs.map((e) => [e.train.loss, e.eval?.loss]),
    arms: results.arms.map((a) => ({
      name: a.name,
      accuracy: a.accuracy,
      loss: a.loss,
      params: a.params,
      forwardMacs: a.forwardMacs,
      surgeryAccuracy: a.surgeryAccuracy,
      bnAccuracy: a.bnAccuracy,
      steps: a.fineTune.steps,
      epochLosses: a.fineTune.epochs.map((e) => [e.train.loss, e.eval?.loss]),
      modelBytes: a.modelBytes,
    })),
    failed: results.failed,
  };
}

describe('decompose compare --queue', () => {
  let dir: string;
  let redis: RedisServer;
  const workers: ChildProcess[] = [];

  /** Starts a queue worker process and resolves once it takes jobs. */
  async function startWorker(): Promise<void> {
    const child = spawn(
      process.execPath,
      ['--conditions=@decompose/source', '--import', register, workerScript, redis.url, PIPELINE_QUEUE],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    workers.push(child);
    let output = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('ready')) resolve();
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${output}`)));
    });
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-compare-queue-'));
    redis = await startRedisServer();
    await Promise.all([startWorker(), startWorker()]);
  }, 60_000);
  afterAll(async () => {
    for (const child of workers) if (child.exitCode === null) child.kill('SIGTERM');
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the same report through Redis and two workers as in this process; a failing arm fails alone', async () => {
    const run = async (name: string, ...flags: string[]) => {
      const file = path.join(dir, `${name}.yaml`);
      await writeFile(file, stringify({ ...tinyConfig, run: name, reportDir: path.join(dir, 'reports') }));
      const { code, err, out } = await compare('--config', file, ...flags);
      expect(err).toEqual([]);
      expect(code).toBe(0);
      const results = JSON.parse(
        await readFile(path.join(dir, 'reports', name, 'results.json'), 'utf8'),
      ) as CompareResults;
      return { results, log: out.join('\n') };
    };
    const local = await run('local');
    const queued = await run('queued', '--queue', redis.url);

    expect(local.results.arms.map((a) => a.name)).toEqual(['svd', 'tucker']);
    expect(local.results.failed).toEqual([
      {
        name: 'broken',
        strategy: failingPlugin,
        error: { name: 'RangeError', message: 'always-fails: this test plugin refuses every layer' },
      },
    ]);
    expect(local.log).toContain("arm 'broken': failed: RangeError: always-fails");
    expect(queued.log).toContain("arm 'broken': failed: RangeError: always-fails");
    expect(numbers(queued.results)).toEqual(numbers(local.results));
    const markdown = await readFile(path.join(dir, 'reports', 'queued', 'report.md'), 'utf8');
    expect(markdown).toContain('**1 arm failed**');

    // A re-run reuses the finished arms and tries the failed one again (and it fails again).
    const again = await run('queued', '--queue', redis.url);
    expect(again.log).toContain("'svd': finished earlier");
    expect(numbers(again.results)).toEqual(numbers(local.results));
  }, 90_000);

  it('decompose train --queue trains on a worker: the same epochs, accuracy and model as in this process', async () => {
    const recipe = {
      data: findBundledSubset(),
      limitTrain: 48,
      limitTest: 16,
      model: 'resnet20',
      epochs: 1,
      batch: 16,
      workers: 0,
      holdOut: 8,
    };
    const train = async (name: string, queue: Record<string, string>) =>
      runTrain(
        trainConfigSchema.parse({ ...recipe, out: path.join(dir, name), ...queue }),
        new Console(false, () => {}),
      );
    const local = await train('train-local', {});
    const queued = await train('train-queued', { queue: redis.url });
    const losses = (s: TrainSummary) => s.epochs.map((e) => [e.train.loss, e.eval?.loss, e.eval?.accuracy]);
    expect(losses(queued)).toEqual(losses(local));
    expect(queued.finalTest).toEqual(local.finalTest);
    expect(queued.holdOut).toEqual(local.holdOut);
    const weights = (s: TrainSummary) => readFile(path.join(s.modelDir, 'weights.bin'));
    expect(await weights(queued)).toEqual(await weights(local));
  }, 60_000);
});
