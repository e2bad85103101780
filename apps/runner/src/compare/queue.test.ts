import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBundledSubset } from '@decompose/cifar10';
import {
  dropQueueBlobs,
  type QueueJobRecord,
  type RedisServer,
  readQueueJobs,
  startRedisServer,
} from '@decompose/jobs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { trainConfigSchema } from '../config.js';
import { Console } from '../progress.js';
import { type CliProcess, killStartedCli, startCli, startWorker, stopCli } from '../test-cli.js';
import { runCommand } from '../test-command.js';
import { runTrain, type TrainSummary } from '../train.js';
import { registerCompareCommand } from './command.js';
import type { CompareConfigInput } from './config.js';
import { DEMO_PRESET, registerDemoCommand } from './demo.js';
import type { CompareResults } from './results.js';

const failingPlugin = fileURLToPath(new URL('./fixtures/failing-plugin.mjs', import.meta.url));

/** Runs `decompose compare` in-process. */
const compare = (...argv: string[]) => runCommand(registerCompareCommand, 'compare', argv);

/**
 * A tiny comparison: a baseline trained for one epoch on 32 images (16 held out for the scan), an arm that
 * selects its layers by a sensitivity scan, two arms by glob and one that always fails.
 */
const tinyConfig = {
  data: findBundledSubset(),
  limitTrain: 48,
  limitTest: 16,
  baseline: { model: 'resnet20', epochs: 1, batch: 16, lr: 0.05, workers: 0 },
  fineTune: { epochs: 1, batch: 16, lr: 0.01, bnImages: 16, workers: 0 },
  measure: { batch: 4, steps: 1 },
  arms: [
    {
      name: 'basis-selected',
      strategy: 'basis',
      layers: 'stage3.*.conv2',
      select: { budget: 'params:0.3', selector: 'greedy', ratios: [0.25, 0.5], calibration: 16 },
    },
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
      scan: a.scan?.entries ?? null,
      selection: a.selection?.choices ?? null,
    })),
    failed: results.failed,
  };
}

/** The same comparison and the same report paths whatever ran it: in this process or through a queue. */
async function writeConfig(dir: string, name: string, config: object = tinyConfig): Promise<string> {
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, stringify({ ...config, run: name, reportDir: path.join(dir, 'reports') }));
  return file;
}

const readResults = async (dir: string, name: string) =>
  JSON.parse(await readFile(path.join(dir, 'reports', name, 'results.json'), 'utf8')) as CompareResults;

describe('decompose compare --queue with decompose worker processes', () => {
  let dir: string;
  let redis: RedisServer;
  let local: { results: CompareResults; log: string };
  let workers: CliProcess[];

  /** Runs `decompose compare` in this process on `name`'s config, with `flags`. */
  const run = async (name: string, ...flags: string[]) => {
    const { code, err, out } = await compare('--config', await writeConfig(dir, name), ...flags);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    return { results: await readResults(dir, name), log: out.join('\n') };
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-compare-queue-'));
    redis = await startRedisServer();
    local = await run('local');
    // Two `decompose worker` processes on queue 'same' (the other tests start their own on their queues).
    workers = await Promise.all([startWorker(redis.url, 'same'), startWorker(redis.url, 'same')]);
  });
  afterAll(async () => {
    if (workers !== undefined) expect(await stopCli(workers)).toEqual([0, 0]);
    killStartedCli();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the same report through Redis and two workers as in this process, scan included; a failing arm fails alone', async () => {
    const queued = await run('queued', '--queue', redis.url, '--queue-name', 'same');

    expect(local.results.arms.map((a) => a.name)).toEqual(['basis-selected', 'svd', 'tucker']);
    expect(local.results.failed).toEqual([
      {
        name: 'broken',
        strategy: failingPlugin,
        error: { name: 'RangeError', message: 'always-fails: this test plugin refuses every layer' },
      },
    ]);
    expect(local.log).toContain("arm 'broken': failed: RangeError: always-fails");
    expect(queued.log).toContain("arm 'broken': failed: RangeError: always-fails");
    // The selecting arm's scan ran on the workers too (one unit per layer), with the same table and selection.
    expect(local.log).toContain(
      'scanning 3 layers x 2 ratios with basis on 16 calibration images on this thread',
    );
    expect(queued.log).toContain(
      `scanning 3 layers x 2 ratios with basis on 16 calibration images through queue 'same' at ${redis.url}`,
    );
    expect(local.results.arms[0]?.scan?.entries).toHaveLength(6);
    expect(local.results.arms[0]?.selection?.choices.length).toBeGreaterThan(0);
    expect(numbers(queued.results)).toEqual(numbers(local.results));
    const kinds = (await readQueueJobs(redis.url, 'same')).map((job) => job.kind);
    expect(kinds.filter((k) => k === 'scan-layer')).toHaveLength(3);
    const logged = workers.flatMap((w) => w.output.stdout.match(/scan-layer \S+: done/g) ?? []);
    expect(logged).toHaveLength(3);
    const markdown = await readFile(path.join(dir, 'reports', 'queued', 'report.md'), 'utf8');
    expect(markdown).toContain('**1 arm failed**');

    // A re-run reuses the finished arms and tries the failed one again (and it fails again).
    const again = await run('queued', '--queue', redis.url, '--queue-name', 'same');
    expect(again.log).toContain("'svd': finished earlier");
    expect(numbers(again.results)).toEqual(numbers(local.results));
  }, 240_000);

  it("redoes an arm whose folder was deleted: from its completed job, or run again once the job's model blob is gone", async () => {
    // After the test above: the 'queued' report is complete, and its arms' jobs are completed on queue 'same'.
    const armDir = path.join(dir, 'reports', 'queued', 'arms', 'svd');
    const armJobs = async () => (await readQueueJobs(redis.url, 'same')).filter((job) => job.kind === 'arm');
    const runs = (jobs: QueueJobRecord[]) =>
      jobs
        .filter((job) => job.state === 'completed')
        .map((job) => [job.id, job.attemptsStarted, job.finishedOn]);
    const before = await armJobs();

    // As compare's message for an arm with other settings says: delete its folder to redo it.
    await rm(armDir, { recursive: true });
    const redone = await run('queued', '--queue', redis.url, '--queue-name', 'same');
    expect(numbers(redone.results)).toEqual(numbers(local.results));
    // Its completed job and model blob were still there: nothing ran again.
    expect(runs(await armJobs())).toEqual(runs(before));

    // Past the retention of its model blob (the job still there): the arm's unit runs again, with the same numbers.
    await rm(armDir, { recursive: true });
    expect(await dropQueueBlobs(redis.url, 'same')).toBeGreaterThan(0);
    const rerun = await run('queued', '--queue', redis.url, '--queue-name', 'same');
    expect(numbers(rerun.results)).toEqual(numbers(local.results));
    const after = await armJobs();
    const ranAgain = after.filter((job) => {
      const earlier = before.find((b) => b.id === job.id);
      return (
        job.state === 'completed' &&
        earlier?.state === 'completed' &&
        job.attemptsStarted > earlier.attemptsStarted
      );
    });
    expect(ranAgain).toHaveLength(1);
  }, 240_000);

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
    const trainedHere = await train('train-local', {});
    const trainedThere = await train('train-queued', { queue: redis.url, queueName: 'same' });
    const losses = (s: TrainSummary) => s.epochs.map((e) => [e.train.loss, e.eval?.loss, e.eval?.accuracy]);
    expect(losses(trainedThere)).toEqual(losses(trainedHere));
    expect(trainedThere.finalTest).toEqual(trainedHere.finalTest);
    expect(trainedThere.holdOut).toEqual(trainedHere.holdOut);
    const weights = (s: TrainSummary) => readFile(path.join(s.modelDir, 'weights.bin'));
    expect(await weights(trainedThere)).toEqual(await weights(trainedHere));
  });

  it('re-attaches when the coordinator is killed (kill -9) and started again: nothing done runs again, same report', async () => {
    const worker = await startWorker(redis.url, 'restart');
    const file = await writeConfig(dir, 'restarted');
    const args = ['compare', '--config', file, '--queue', redis.url, '--queue-name', 'restart'];
    const first = startCli(args);
    // Killed once an arm is done and the next one runs on the (only) worker.
    const arms = (jobs: QueueJobRecord[]) => jobs.filter((job) => job.kind === 'arm');
    let before: QueueJobRecord[] = [];
    for (const until = Date.now() + 180_000; ; await new Promise((resolve) => setTimeout(resolve, 200))) {
      before = await readQueueJobs(redis.url, 'restart');
      const states = arms(before).map((job) => job.state);
      if (states.includes('completed') && states.includes('active')) break;
      if (first.child.exitCode !== null || Date.now() > until) {
        throw new Error(`no arm done while another ran: ${first.output.stdout}${first.output.stderr}`);
      }
    }
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe(128);
    const running = arms(before).find((job) => job.state === 'active')!;

    const second = startCli(args);
    expect(await second.exited, second.output.stderr).toBe(0);
    expect(numbers(await readResults(dir, 'restarted'))).toEqual(numbers(local.results));
    const after = await readQueueJobs(redis.url, 'restart');
    // The same jobs (the units have the same ids), and none that had finished ran again.
    expect(after.map((job) => job.id)).toEqual(before.map((job) => job.id));
    const runs = (job: QueueJobRecord | undefined) => [
      job?.attemptsMade,
      job?.attemptsStarted,
      job?.processedOn,
      job?.finishedOn,
    ];
    for (const job of before.filter((j) => j.state === 'completed')) {
      expect(runs(after.find((j) => j.id === job.id)), `${job.kind} ${job.id}`).toEqual(runs(job));
    }
    // The arm that was running when the coordinator died ran once: the new coordinator waited for it.
    const finished = after.find((job) => job.id === running.id);
    expect(finished?.state).toBe('completed');
    expect(finished?.attemptsStarted).toBe(1);
    expect(await stopCli([worker])).toEqual([0]);
  }, 300_000);

  it('decompose demo --queue runs the demo (a smaller preset) on a decompose worker', async () => {
    const worker = await startWorker(redis.url, 'demo');
    // The preset's arms and strategies, on stage 3's second convolutions and 16 calibration images.
    const shrink = (arm: CompareConfigInput['arms'][number]) => ({
      ...arm,
      layers: 'stage3.*.conv2',
      ...(arm.select === undefined ? {} : { select: { ...arm.select, calibration: 16 } }),
    });
    const preset: CompareConfigInput = {
      ...DEMO_PRESET,
      data: findBundledSubset(),
      limitTrain: 48,
      limitTest: 16,
      reportDir: path.join(dir, 'reports'),
      baseline: { ...DEMO_PRESET.baseline, epochs: 1, batch: 16, workers: 0 },
      fineTune: { ...DEMO_PRESET.fineTune, epochs: 1, batch: 16, bnImages: 16, workers: 0 },
      measure: { batch: 4, steps: 1 },
      arms: DEMO_PRESET.arms.map(shrink),
    };
    const demo = await runCommand((program, deps) => registerDemoCommand(program, deps, preset), 'demo', [
      '--queue',
      redis.url,
      '--queue-name',
      'demo',
    ]);
    expect(demo.err).toEqual([]);
    expect(demo.code).toBe(0);
    const results = await readResults(dir, 'demo');
    expect(results.arms.map((a) => a.name)).toEqual(DEMO_PRESET.arms.map((a) => a.name));
    // Every unit (the baseline, the scan's layers, the arms) ran on the worker.
    const jobs = await readQueueJobs(redis.url, 'demo');
    expect(new Set(jobs.map((job) => job.kind))).toEqual(new Set(['training-run', 'scan-layer', 'arm']));
    expect(jobs.filter((job) => job.kind === 'arm')).toHaveLength(DEMO_PRESET.arms.length);
    for (const job of jobs)
      expect([job.state, job.processedBy]).toEqual(['completed', expect.stringMatching(/:\d+$/)]);
    expect(worker.output.stdout).toMatch(/^arm.*: done in/m);
    expect(await stopCli([worker])).toEqual([0]);
  }, 240_000);
});
