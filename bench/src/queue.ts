/**
 * What running the demo's units through a Redis queue costs against worker threads (issue 16's benchmark). The
 * demo (`DEMO_PRESET` of the runner) runs its `basis-selected` arm's sensitivity scan (one `scan-layer` unit
 * per convolution, ratios 0.25/0.5/0.75, 500 calibration images held out of the bundled subset's training
 * images), selects for its budget, then runs its four arms as `arm` units (surgery, BatchNorm re-estimation,
 * fine-tune, measurement), as `decompose compare` does. All of it runs on (a) `localExecutor` with 2 worker
 * threads, (b) a fresh redis-server with 1 and (c) with 2 `decompose worker` processes (built
 * `apps/runner/dist/cli.js`), each queue run under a queue name of its own, so that no finished job is reused.
 * `--rounds N` repeats the three, in alternating order (A B C, C B A, …), for ratios taken on a busy machine.
 *
 * The ResNet-20 has fresh weights (fixed seed): neither the cost of moving work through Redis nor the
 * identity of the results depends on training, and the demo's baseline training would add 5 minutes. Each arm
 * fine-tunes on the thread its unit runs in (`workers: 0`), so that an arm is one core's work everywhere, as a
 * scan unit is, and the executors are compared on the same units.
 *
 * Per queue job, from BullMQ's timestamps: the dispatch and delivery delays (see `queue-timeline.ts`), whose
 * sum per worker over the wall time is the queue overhead; per phase (scan, arms) and worker: busy time and
 * idle time before the first job, between jobs and in the tail, and the coordinator's time before its first
 * enqueue. Bytes per job: blobs the coordinator put and read, job data and return value as JSON, and Redis's
 * `total_net_input_bytes`/`total_net_output_bytes` deltas. The CPU share other processes took during each run
 * (`machine-load.ts`) says how loaded the machine was. Tables, selections and leaderboards are compared exactly.
 * Writes bench/results/queue.json (atomically). Usage: node bench/dist/queue.js --help
 */
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basisStrategy } from '@decompose/basis';
import {
  type Cifar10Images,
  findBundledSubset,
  imageShapeOf,
  normalizeImageSet,
  readCifar10,
  selectImages,
} from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import {
  type Executor,
  type JobData,
  type JsonValue,
  localExecutor,
  queueExecutor,
  type Unit,
  unitId,
} from '@decompose/jobs';
import { startRedisServer } from '@decompose/jobs/testing';
import {
  type ArmUnitResult,
  armUnit,
  calibrationSplit,
  estimateArmSeconds,
  loadPackedModel,
  PIPELINE_CATALOGUE,
  packImageSet,
  packModel,
  resolveStrategy,
  scanLayers,
  scanOnExecutor,
  selectionPlan,
  weightsFingerprint,
} from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import { compareConfigSchema, DEMO_PRESET } from '@decompose/runner';
import {
  calibrationBaseline,
  type Selection,
  type SensitivityTable,
  selectGreedy,
} from '@decompose/sensitivity';
import { evaluate } from '@decompose/train';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { type CpuShares, cpuCounters, cpuShares } from './machine-load.js';
import { printTable, writeAtomically } from './output.js';
import { type JobSpan, jobOverheads, type PhaseTime, phaseTime } from './queue-timeline.js';

class QueueBenchOptionError extends BenchError {
  override readonly name = 'QueueBenchOptionError';
}

const USAGE = `node bench/dist/queue.js [flags]   (pnpm bench:queue: the whole demo, 1 round)
  --arm-epochs N      fine-tune epochs of each arm (default the demo's, 2)
  --limit-train N     fine-tune on the first N training images (default all 5,085)
  --limit-test N      evaluate the arms on the first N test images (default all 1,017)
  --scan-only         the scan alone, no arms
  --limit-layers N    scan the first N layers only
  --calibration N     calibration images of the scan (default the demo's, 500)
  --rounds N          run the three configurations N times, alternating their order (default 1)
  --seed N            seed of the model, the calibration split and the arms (default the demo's, 0)
  --out FILE          result JSON (default bench/results/queue.json)`;

const DEMO = compareConfigSchema.parse(DEMO_PRESET);
const CLI = fileURLToPath(new URL('../../apps/runner/dist/cli.js', import.meta.url));

const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** The BullMQ job id of a unit: its identity (`unitId` of its parsed input, as the queue executor adds it). */
function jobIdOf(unit: Unit): string {
  const input = JSON.parse(JSON.stringify(unit.kind.input.parse(unit.input))) as JsonValue;
  return unitId(unit.kind.kind, unit.kind.version, input);
}

/** Bytes the coordinator moved through an executor's blob store in one phase. */
interface BlobTraffic {
  put: number;
  got: number;
}

/** An executor that counts the blob bytes the coordinator moves and records when each job's result arrived. */
function metered(inner: Executor) {
  let traffic: BlobTraffic = { put: 0, got: 0 };
  const resultSeenAt = new Map<string, number>();
  const executor: Executor = {
    blobs: {
      put: async (bytes) => {
        traffic.put += bytes.byteLength;
        return inner.blobs.put(bytes);
      },
      get: async (id) => {
        const bytes = await inner.blobs.get(id);
        traffic.got += bytes.byteLength;
        return bytes;
      },
      has: (id) => inner.blobs.has(id),
      delete: (id) => inner.blobs.delete(id),
      get maxBytes() {
        return inner.blobs.maxBytes;
      },
    },
    run: (units, options = {}) =>
      inner.run(units, {
        ...options,
        onResult: (index, outcome, unit) => {
          resultSeenAt.set(jobIdOf(unit), Date.now());
          options.onResult?.(index, outcome, unit);
        },
      }),
    close: () => inner.close(),
  };
  /** The blob traffic since the last call. */
  const takeTraffic = (): BlobTraffic => {
    const taken = traffic;
    traffic = { put: 0, got: 0 };
    return taken;
  };
  return { executor, resultSeenAt, takeTraffic };
}

/** Starts `decompose worker` on the queue and resolves once it takes jobs (its start-up is not timed). */
async function startWorker(url: string, queue: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--queue', url, '--queue-name', queue, '--concurrency', '1'],
    { env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start in 60 s:\n${output}`)), 60_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (/taking units from queue/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    child.on('exit', (code) => reject(new Error(`worker exited with ${code}:\n${output}`)));
  });
  return child;
}

/** Stops a worker with SIGTERM (it finishes nothing: the queue is drained) and waits for it to exit. */
async function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Redis's network byte counters (`INFO stats`). */
async function netBytes(redis: Redis): Promise<{ input: number; output: number }> {
  const stats = await redis.info('stats');
  const read = (field: string) => Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(stats)?.[1] ?? Number.NaN);
  return { input: read('total_net_input_bytes'), output: read('total_net_output_bytes') };
}

/** A completed job: its timestamps, and the sizes of its data and return value as JSON. */
interface JobRecord extends JobSpan {
  kind: string;
  dataBytes: number;
  returnBytes: number;
}

/** The completed jobs of a queue, labelled by `labels` (job id → name) or their layer; `seenAt` by job id. */
async function completedJobs(
  connection: Redis,
  name: string,
  labels: ReadonlyMap<string, string>,
  seenAt: ReadonlyMap<string, number>,
): Promise<JobRecord[]> {
  const queue = new Queue<JobData>(name, { connection });
  try {
    return (await queue.getJobs(['completed'])).map((job) => {
      const id = job.id ?? '?';
      const { layer } = job.data.input as { layer?: unknown };
      return {
        label: labels.get(id) ?? (typeof layer === 'string' ? layer : id),
        kind: job.data.kind,
        worker: job.processedBy ?? '?',
        enqueuedAt: job.timestamp,
        startedAt: job.processedOn ?? Number.NaN,
        finishedAt: job.finishedOn ?? Number.NaN,
        seenAt: seenAt.get(id) ?? Number.NaN,
        dataBytes: JSON.stringify(job.data).length,
        returnBytes: JSON.stringify(job.returnvalue).length,
      };
    });
  } finally {
    await queue.close();
  }
}

/** A table without its wall time, which is all that may differ between executors. */
function tableContent(table: SensitivityTable): string {
  const { seconds: _, ...rest } = table;
  return JSON.stringify(rest);
}

/** Keys of an arm's result that are timings (wall time, images per second): they differ from run to run. */
const TIMING_KEYS = new Set(['seconds', 'imagesPerSecond', 'trainImagesPerSecond', 'evalImagesPerSecond']);

/** `value` without its timings, nor the blob id of the model (compared by its weights instead). */
function withoutTimings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimings);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !TIMING_KEYS.has(key) && key !== 'model')
      .map(([key, v]) => [key, withoutTimings(v)]),
  );
}

/**
 * The largest absolute difference between the numbers of two values of one shape (0 when identical; ∞ when
 * their shapes or other values differ): says how far apart two leaderboards are when they are not identical.
 */
function largestDifference(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a === b ? 0 : Math.abs(a - b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object')
    return a === b ? 0 : Number.POSITIVE_INFINITY;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  let largest = 0;
  for (const key of keys) {
    largest = Math.max(
      largest,
      largestDifference((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
    );
  }
  return largest;
}

/** One arm of a run: its unit's result and the fingerprint of the model's weights it sent back. */
interface ArmRun {
  name: string;
  result: ArmUnitResult;
  weights: string;
  /** The coordinator's estimate of its fine-tune (the unit's cost: longest first). */
  estimatedSeconds: number;
}

/** What a configuration's run measured in one phase. */
interface PhaseRun {
  seconds: number;
  window: { start: number; end: number };
  jobs: number;
  blobs: BlobTraffic;
  /** Redis's network byte deltas (queue runs). */
  net: { input: number; output: number } | null;
}

/** One run of one configuration. */
interface ConfigurationRun {
  name: string;
  workers: number;
  round: number;
  wallSeconds: number;
  scan: PhaseRun;
  arms: PhaseRun | null;
  table: SensitivityTable;
  selection: Selection | null;
  armRuns: ArmRun[];
  /** The arm units' job ids → the arms' names. */
  armJobs: Map<string, string>;
  /** Completed jobs (queue runs); null for the local executor. */
  jobs: JobRecord[] | null;
  workerNames: string[];
  cpu: CpuShares | null;
  loadAverage: number[];
  /** The untimed warm-up: its seconds, and each warm-up job's run time (queue runs; null for threads). */
  warmUp: { seconds: number; jobSeconds: number[] | null };
}

/** What {@link runWork} measures: a configuration's run without what only its executor knows. */
type WorkRun = Pick<
  ConfigurationRun,
  'wallSeconds' | 'scan' | 'arms' | 'table' | 'selection' | 'armRuns' | 'armJobs'
>;

/** Everything every configuration runs: the model, the scan request, the arms and their data. */
interface Work {
  model: tfl.LayersModel;
  scan: Parameters<typeof scanOnExecutor>[1];
  layers: string[];
  arms: { name: string; strategy: string; layers: string[] | undefined; options: Record<string, unknown> }[];
  selectingArm: string;
  recipe: typeof DEMO.fineTune;
  train: Cifar10Images;
  test: Cifar10Images;
}

/** The scan, then (unless `scanOnly`) the selection and the arms' units, as `decompose compare` runs them. */
async function runWork(
  work: Work,
  m: ReturnType<typeof metered>,
  scanOnly: boolean,
  redis: Redis | null,
): Promise<WorkRun> {
  const { executor } = m;
  const net = async () => (redis === null ? null : await netBytes(redis));
  const delta = (
    before: { input: number; output: number } | null,
    after: { input: number; output: number } | null,
  ) =>
    before === null || after === null
      ? null
      : { input: after.input - before.input, output: after.output - before.output };

  const started = performance.now();
  const scanStart = Date.now();
  const netBeforeScan = await net();
  const table = await scanOnExecutor(executor, work.scan);
  const scanEnd = Date.now();
  const scan: PhaseRun = {
    seconds: (scanEnd - scanStart) / 1000,
    window: { start: scanStart, end: scanEnd },
    jobs: table.layers.length,
    blobs: m.takeTraffic(),
    net: delta(netBeforeScan, await net()),
  };
  if (scanOnly) {
    return {
      wallSeconds: (performance.now() - started) / 1000,
      scan,
      arms: null,
      table,
      selection: null,
      armRuns: [],
      armJobs: new Map(),
    };
  }

  const armsStart = Date.now();
  const netBeforeArms = await net();
  const select = DEMO.arms.find((arm) => arm.name === work.selectingArm)?.select;
  if (select === undefined) throw new Error(`the demo has no selecting arm '${work.selectingArm}'`);
  const selection = selectGreedy(table, select.budget, { metric: select.metric });
  // As compare's context: the baseline and the images put once for every arm's unit.
  const blobs = {
    baseline: await executor.blobs.put(await packModel(work.model, [])),
    train: await executor.blobs.put(packImageSet(work.train)),
    test: await executor.blobs.put(packImageSet(work.test)),
  };
  // As compare's armUnitOf (apps/runner/src/compare/run.ts), on a queue (no checkpoint folder), and costed as
  // compare costs arms on a queue: longest first.
  const units = [];
  for (const arm of work.arms) {
    const selected = arm.name === work.selectingArm ? selection : null;
    const surgery = {
      strategy: arm.strategy,
      ...(selected ? selectionPlan(selected) : { layers: arm.layers }),
      options: arm.options,
      init: 'trained' as const,
      seed: work.recipe.seed,
    };
    const cost = await estimateArmSeconds({
      ...surgery,
      baseline: work.model,
      recipe: work.recipe,
      train: work.train,
    });
    units.push(
      armUnit.unit(
        {
          ...surgery,
          baseline: blobs.baseline,
          recipe: work.recipe,
          data: { train: blobs.train, test: blobs.test },
          measure: DEMO.measure,
        },
        { cost },
      ),
    );
  }
  const outcomes = await executor.run(units);
  const armRuns: ArmRun[] = [];
  for (const [i, outcome] of outcomes.entries()) {
    const name = work.arms[i]!.name;
    if (!outcome.ok) throw new Error(`arm '${name}' failed: ${outcome.error.name}: ${outcome.error.message}`);
    // As compare's finishArm, the model comes back to the coordinator. Unlike compare, the bench deletes its blobs,
    // so that the next configuration puts (and counts) the same bytes again instead of finding them in Redis.
    const model = await loadPackedModel(await executor.blobs.get(outcome.result.model));
    try {
      armRuns.push({
        name,
        result: outcome.result,
        weights: weightsFingerprint(model),
        estimatedSeconds: units[i]!.cost ?? 0,
      });
    } finally {
      model.dispose();
    }
    await executor.blobs.delete(outcome.result.model);
  }
  await Promise.all(Object.values(blobs).map((id) => executor.blobs.delete(id)));
  const armsEnd = Date.now();
  return {
    wallSeconds: (performance.now() - started) / 1000,
    scan,
    arms: {
      seconds: (armsEnd - armsStart) / 1000,
      window: { start: armsStart, end: armsEnd },
      jobs: units.length,
      blobs: m.takeTraffic(),
      net: delta(netBeforeArms, await net()),
    },
    table,
    selection,
    armRuns,
    armJobs: new Map(units.map((unit, i) => [jobIdOf(unit), work.arms[i]!.name])),
  };
}

/**
 * What scanOnExecutor does before it enqueues a unit, timed alone: the trained model's calibration metric and the
 * packing of the model and images (their puts are in the breakdown's "before 1st enqueue").
 */
async function coordinatorWork(work: Work) {
  const { model, calibration } = work.scan;
  let started = performance.now();
  const images = tf.tensor4d(normalizeImageSet(calibration), [
    calibration.count,
    ...imageShapeOf(calibration),
  ]);
  try {
    await calibrationBaseline(model, { images, labels: calibration.labels });
  } finally {
    images.dispose();
  }
  const baselineMetric = (performance.now() - started) / 1000;
  started = performance.now();
  await packModel(model, []);
  packImageSet(calibration);
  return { baseline_metric_seconds: baselineMetric, packing_seconds: (performance.now() - started) / 1000 };
}

/**
 * Warms an executor before the clock: one tiny scan unit (another model, 8 calibration images, one ratio) per
 * thread or worker, so that the engine, the strategy and tfjs's kernels are loaded everywhere, as on a worker that
 * has run units before: a queue worker starts its sandboxed processor at start-up, but its first unit still imports
 * the catalogue and the strategy and compiles tfjs's kernels, as a local executor's threads do. `workersWarmed` says
 * how many distinct workers ran the units (queue: from the jobs); it is tried again until all are.
 * Returns the seconds it took.
 */
async function warmUp(
  executor: Executor,
  work: Work,
  count: number,
  workersWarmed: (since: number) => Promise<number>,
): Promise<number> {
  const started = Date.now();
  const calibration = selectImages(
    work.scan.calibration,
    Uint32Array.from({ length: 8 }, (_, i) => i),
  );
  for (let attempt = 1; ; attempt++) {
    const model = createCifarResNet({ arch: DEMO.baseline.model, seed: work.scan.seed + attempt });
    try {
      await scanOnExecutor(executor, {
        ...work.scan,
        model,
        layers: work.layers.slice(0, count),
        ratios: work.scan.ratios.slice(0, 1),
        calibration,
      });
    } finally {
      model.dispose();
    }
    const warmed = await workersWarmed(started);
    if (warmed >= count) return (Date.now() - started) / 1000;
    if (attempt === 5) throw new Error(`only ${warmed} of ${count} workers took a warm-up unit in 5 tries`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      'arm-epochs': { type: 'string' },
      'limit-train': { type: 'string' },
      'limit-test': { type: 'string' },
      'scan-only': { type: 'boolean', default: false },
      'limit-layers': { type: 'string' },
      calibration: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      seed: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { integer } = flagParsers(QueueBenchOptionError);
  const optional = (flag: string, text: string | undefined, min: number) =>
    text === undefined ? null : integer(flag, text, min);
  const selecting = DEMO.arms.find((arm) => arm.select !== undefined);
  if (selecting?.select === undefined) throw new Error('the demo preset has no arm that selects layers');
  const calibrationCount = optional('calibration', values.calibration, 1) ?? selecting.select.calibration;
  const seed = optional('seed', values.seed, 0) ?? DEMO.baseline.seed;
  const armEpochs = optional('arm-epochs', values['arm-epochs'], 1) ?? DEMO.fineTune.epochs;
  const limitTrain = optional('limit-train', values['limit-train'], DEMO.fineTune.batch);
  const limitTest = optional('limit-test', values['limit-test'], 1);
  const limitLayers = optional('limit-layers', values['limit-layers'], 1);
  const rounds = integer('rounds', values.rounds, 1);
  const scanOnly = values['scan-only'];
  const out = values.out ?? fileURLToPath(new URL('../results/queue.json', import.meta.url));
  const benchStarted = performance.now();
  const loadStart = os.loadavg();

  const engine = await initEngine();
  log(
    `backend ${engine.backend} (${engine.threads} thread(s)); load average ${loadStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const dataset = await readCifar10(findBundledSubset());
  const { calibration } = calibrationSplit(dataset.train, calibrationCount, seed, '--calibration');
  const first = (set: Cifar10Images, limit: number | null) =>
    limit === null || limit >= set.count
      ? set
      : selectImages(
          set,
          Uint32Array.from({ length: limit }, (_, i) => i),
        );
  const model = createCifarResNet({ arch: DEMO.baseline.model, seed });
  const { ratios } = selecting.select;
  const all = scanLayers(model, basisStrategy, ratios, selecting.options, selecting.layers, '--limit-layers');
  const layers = limitLayers === null ? all : all.slice(0, limitLayers);
  const recipe = { ...DEMO.fineTune, epochs: armEpochs, workers: 0 };
  const arms = await Promise.all(
    DEMO.arms.map(async (arm) => {
      // A plugin by its absolute specifier, which a worker imports as well as this process (as compare does).
      const { plugin } = await resolveStrategy(arm.strategy, `the arm '${arm.name}'`);
      return { name: arm.name, strategy: plugin ?? arm.strategy, layers: arm.layers, options: arm.options };
    }),
  );
  const work: Work = {
    model,
    scan: {
      model,
      strategy: basisStrategy,
      strategySpecifier: selecting.strategy,
      layers,
      layersField: '--limit-layers',
      ratios,
      baseOptions: selecting.options,
      calibration,
      seed,
    },
    layers,
    arms,
    selectingArm: selecting.name,
    recipe,
    train: first(dataset.train, limitTrain),
    test: first(dataset.test, limitTest),
  };
  const baselineFigures = await evaluate(model, work.test, recipe.batch);
  const coordinator = await coordinatorWork(work);
  log(
    `the coordinator's serial work before a scan's first enqueue, alone: baseline metric ` +
      `${coordinator.baseline_metric_seconds.toFixed(2)} s, packing the model and images ` +
      `${coordinator.packing_seconds.toFixed(2)} s`,
  );
  log(
    `scan: ${layers.length} layers × ${ratios.length} ratios with basis on ${calibration.count} calibration images` +
      (scanOnly
        ? ''
        : `; arms: ${arms.map((a) => a.name).join(', ')}, ${armEpochs} epoch(s) on ${work.train.count} images, ` +
          `tested on ${work.test.count}`),
  );
  const redis = await startRedisServer();
  const admin = new Redis(redis.url, { maxRetriesPerRequest: null });
  const workers: ChildProcess[] = [];
  const configurations = [0, 1, 2] as const; // local 2 threads, queue 1 worker, queue 2 workers
  const runs: ConfigurationRun[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? configurations : [...configurations].reverse();
      for (const configuration of order) {
        const cpuBefore = cpuCounters();
        const loadAverage = os.loadavg();
        let run: ConfigurationRun;
        if (configuration === 0) {
          const m = metered(await localExecutor({ threads: 2, catalogue: PIPELINE_CATALOGUE }));
          try {
            // Two units on two idle threads: each takes one.
            const warmSeconds = await warmUp(m.executor, work, 2, async () => 2);
            m.takeTraffic();
            log(`local, 2 threads: warmed in ${warmSeconds.toFixed(1)} s (not timed)`);
            const done = await runWork(work, m, scanOnly, null);
            run = {
              ...done,
              name: 'local, 2 threads',
              workers: 2,
              round,
              jobs: null,
              workerNames: [],
              cpu: null,
              loadAverage,
              warmUp: { seconds: warmSeconds, jobSeconds: null },
            };
          } finally {
            await m.executor.close();
          }
        } else {
          const count = configuration;
          const name = `bench-queue-r${round}-${count}w-${Date.now()}`;
          // Workers start before the clock: their start-up (node, tfjs, the catalogue) is not what is measured.
          for (let i = 0; i < count; i++) workers.push(await startWorker(redis.url, name));
          const m = metered(await queueExecutor({ url: redis.url, queue: name }));
          let done: WorkRun;
          let warmUpJobs: JobRecord[] = [];
          let warmSeconds = 0;
          try {
            warmSeconds = await warmUp(m.executor, work, count, async (since) => {
              const all = await completedJobs(admin, name, new Map(), m.resultSeenAt);
              warmUpJobs = all.filter((j) => j.enqueuedAt >= since);
              return new Set(warmUpJobs.map((j) => j.worker)).size;
            });
            m.takeTraffic();
            log(
              `${name}: warmed in ${warmSeconds.toFixed(1)} s (not timed); warm-up jobs ` +
                warmUpJobs.map((j) => `${((j.finishedAt - j.startedAt) / 1000).toFixed(1)} s`).join(', '),
            );
            done = await runWork(work, m, scanOnly, admin);
          } finally {
            await m.executor.close();
          }
          const jobs = (await completedJobs(admin, name, done.armJobs, m.resultSeenAt)).filter(
            (j) => j.enqueuedAt >= done.scan.window.start,
          );
          await Promise.all(workers.splice(0).map(stopWorker));
          const workerNames = [...new Set(jobs.map((j) => j.worker))].sort();
          for (let i = workerNames.length; i < count; i++) workerNames.push(`(idle worker ${i + 1})`);
          run = {
            ...done,
            name: `queue, ${count} worker process${count > 1 ? 'es' : ''}`,
            workers: count,
            round,
            jobs,
            workerNames,
            cpu: null,
            loadAverage,
            warmUp: {
              seconds: warmSeconds,
              jobSeconds: warmUpJobs.map((j) => (j.finishedAt - j.startedAt) / 1000),
            },
          };
        }
        run.cpu = cpuShares(cpuBefore, cpuCounters());
        runs.push(run);
        log(
          `round ${round + 1}, ${run.name}: ${run.wallSeconds.toFixed(1)} s (scan ${run.scan.seconds.toFixed(1)} s` +
            (run.arms === null ? '' : `, arms ${run.arms.seconds.toFixed(1)} s`) +
            `); others took ${run.cpu === null ? '?' : `${(100 * run.cpu.others).toFixed(0)}%`} of the CPU`,
        );
      }
    }
  } finally {
    await Promise.all(workers.map(stopWorker));
    admin.disconnect();
    await redis.stop();
  }
  model.dispose();
  await report({
    runs,
    work,
    baselineFigures,
    coordinator,
    scanOnly,
    rounds,
    loadStart,
    engine,
    out,
    benchStarted,
    calibration,
  });
}

/** What {@link report} prints and writes. */
interface Measured {
  runs: ConfigurationRun[];
  work: Work;
  baselineFigures: { accuracy: number; loss: number };
  coordinator: Awaited<ReturnType<typeof coordinatorWork>>;
  scanOnly: boolean;
  rounds: number;
  loadStart: number[];
  engine: { backend: string; threads: number };
  out: string;
  benchStarted: number;
  calibration: Cifar10Images;
}

const kib = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / 1024).toFixed(1)} KiB`);
const secondsOf = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** One phase's bytes per job. */
function phaseBytes(phase: PhaseRun, jobs: readonly JobRecord[] | null, kind: string) {
  const own = jobs?.filter((j) => j.kind === kind) ?? null;
  const n = Math.max(phase.jobs, 1);
  return {
    jobs: phase.jobs,
    blob_bytes_put_per_job: phase.blobs.put / n,
    blob_bytes_read_per_job: phase.blobs.got / n,
    job_data_bytes_per_job: own === null ? null : mean(own.map((j) => j.dataBytes)),
    return_value_bytes_per_job: own === null ? null : mean(own.map((j) => j.returnBytes)),
    redis_net_input_bytes_per_job: phase.net === null ? null : phase.net.input / n,
    redis_net_output_bytes_per_job: phase.net === null ? null : phase.net.output / n,
  };
}

/** The arms of a run as a leaderboard, without timings (what must be identical on every executor). */
function leaderboardOf(run: ConfigurationRun) {
  return run.armRuns.map((arm) => ({
    name: arm.name,
    weights: arm.weights,
    ...(withoutTimings(arm.result) as object),
  }));
}

async function report(measured: Measured): Promise<void> {
  const { runs, work, baselineFigures, scanOnly } = measured;
  const referenceOf = (run: ConfigurationRun) =>
    runs.find((r) => r.round === run.round && r.workers === 2 && r.jobs === null) ?? runs[0]!;
  const rows = runs.map((run) => {
    const jobs = run.jobs;
    const overheads = jobs === null ? null : jobOverheads(jobs);
    const overheadShare =
      overheads === null
        ? null
        : sum(overheads.map((o) => o.dispatchMs + o.deliveryMs)) / run.workers / 1000 / run.wallSeconds;
    const phases: PhaseTime[] =
      jobs === null
        ? []
        : [
            phaseTime(
              'scan',
              run.scan.window,
              jobs.filter((j) => j.kind === 'scan-layer'),
              run.workerNames,
            ),
            ...(run.arms === null
              ? []
              : [
                  phaseTime(
                    'arms',
                    run.arms.window,
                    jobs.filter((j) => j.kind === 'arm'),
                    run.workerNames,
                  ),
                ]),
          ];
    return {
      executor: run.name,
      round: run.round + 1,
      workers: run.workers,
      wall_seconds: run.wallSeconds,
      scan_seconds: run.scan.seconds,
      arms_seconds: run.arms?.seconds ?? null,
      wall_vs_local_threads: run.wallSeconds / referenceOf(run).wallSeconds,
      mean_dispatch_ms: overheads === null ? null : mean(overheads.map((o) => o.dispatchMs)),
      mean_delivery_ms: overheads === null ? null : mean(overheads.map((o) => o.deliveryMs)),
      overhead_share_of_wall: overheadShare,
      scan_bytes: phaseBytes(run.scan, jobs, 'scan-layer'),
      arms_bytes: run.arms === null ? null : phaseBytes(run.arms, jobs, 'arm'),
      load_average_1min_at_start: run.loadAverage[0],
      cpu_shares: run.cpu,
      warm_up_seconds: run.warmUp.seconds,
      warm_up_job_seconds: run.warmUp.jobSeconds,
      // Each arm's estimate beside its fine-tune as run: the estimates only have to rank the arms.
      arm_estimates: run.armRuns.map((arm) => ({
        name: arm.name,
        estimated_seconds: arm.estimatedSeconds,
        fine_tune_seconds: arm.result.seconds.fineTune,
      })),
      phases,
      per_job:
        jobs === null
          ? null
          : jobs
              .sort((a, b) => a.startedAt - b.startedAt)
              .map((j) => ({
                label: j.label,
                kind: j.kind,
                worker: j.worker,
                // Relative to the run's start (the scan's start), in ms.
                enqueued_ms: j.enqueuedAt - run.scan.window.start,
                started_ms: j.startedAt - run.scan.window.start,
                finished_ms: j.finishedAt - run.scan.window.start,
                seen_ms: j.seenAt - run.scan.window.start,
                data_bytes: j.dataBytes,
                return_bytes: j.returnBytes,
              })),
    };
  });

  printTable(
    [
      'executor',
      'round',
      'wall',
      'scan',
      'arms',
      'vs threads',
      'dispatch+delivery/job',
      'overhead',
      "others' CPU",
    ],
    rows.map((r) => [
      r.executor,
      String(r.round),
      `${r.wall_seconds.toFixed(1)} s`,
      `${r.scan_seconds.toFixed(1)} s`,
      r.arms_seconds === null ? '-' : `${r.arms_seconds.toFixed(1)} s`,
      `${r.wall_vs_local_threads.toFixed(2)}×`,
      r.mean_dispatch_ms === null
        ? '-'
        : `${r.mean_dispatch_ms.toFixed(0)}+${(r.mean_delivery_ms ?? 0).toFixed(0)} ms`,
      r.overhead_share_of_wall === null ? '-' : `${(100 * r.overhead_share_of_wall).toFixed(2)}%`,
      r.cpu_shares === null ? '-' : `${(100 * r.cpu_shares.others).toFixed(0)}%`,
    ]),
  );
  const byteRows = rows.flatMap((r) =>
    r.round !== 1
      ? []
      : [
          ['scan', r.scan_bytes] as const,
          ...(r.arms_bytes === null ? [] : [['arms', r.arms_bytes] as const]),
        ].map(([phase, b]) => [
          r.executor,
          phase,
          String(b.jobs),
          `${kib(b.blob_bytes_put_per_job)} / ${kib(b.blob_bytes_read_per_job)}`,
          b.job_data_bytes_per_job === null
            ? '-'
            : `${kib(b.job_data_bytes_per_job)} + ${kib(b.return_value_bytes_per_job)}`,
          b.redis_net_input_bytes_per_job === null
            ? '-'
            : `${kib(b.redis_net_input_bytes_per_job)} / ${kib(b.redis_net_output_bytes_per_job)}`,
        ]),
  );
  printTable(
    [
      'executor (round 1)',
      'phase',
      'jobs',
      'blobs put/read per job',
      'data+return/job',
      'redis in/out per job',
    ],
    byteRows,
  );
  printTable(
    [
      'executor',
      'round',
      'phase',
      'wall',
      'before 1st enqueue',
      'worker',
      'jobs',
      'busy',
      'before 1st job',
      'between',
      'tail',
    ],
    rows.flatMap((r) =>
      r.phases.flatMap((p) =>
        p.workers.map((w, i) => [
          i === 0 ? r.executor : '',
          i === 0 ? String(r.round) : '',
          i === 0 ? p.phase : '',
          i === 0 ? secondsOf(p.wallMs) : '',
          i === 0 && p.beforeEnqueueMs !== null ? secondsOf(p.beforeEnqueueMs) : '',
          w.worker.replace(/^.*:/, 'pid '),
          String(w.jobs),
          secondsOf(w.busyMs),
          secondsOf(w.beforeFirstMs),
          secondsOf(w.betweenMs),
          secondsOf(w.tailMs),
        ]),
      ),
    ),
  );

  const reference = runs[0]!;
  const board = leaderboardOf(reference);
  if (!scanOnly) {
    printTable(
      ['arm', 'test accuracy', 'Δ vs baseline', 'test loss', 'params', 'MACs', 'weights'],
      reference.armRuns.map((arm) => {
        const m = arm.result.measured;
        return [
          arm.name,
          m === null ? '-' : `${(100 * m.accuracy).toFixed(2)}%`,
          m === null ? '-' : `${(100 * (m.accuracy - baselineFigures.accuracy)).toFixed(2)} pp`,
          m === null ? '-' : m.loss.toFixed(4),
          String(arm.result.cost.params),
          String(arm.result.cost.forwardMacs),
          arm.weights,
        ];
      }),
    );
  }

  // Exact: the same code on the same backend, single-threaded kernels, the same seeds and inputs (blobs are
  // content-addressed) give bit-identical numbers; a tolerance would hide a result that depends on the executor.
  const identity = runs.map((run) => ({
    executor: run.name,
    round: run.round + 1,
    table: tableContent(run.table) === tableContent(reference.table),
    selection: JSON.stringify(run.selection) === JSON.stringify(reference.selection),
    leaderboard: JSON.stringify(leaderboardOf(run)) === JSON.stringify(board),
    weights: run.armRuns.every((arm, i) => arm.weights === reference.armRuns[i]?.weights),
    largest_difference: Math.max(
      largestDifference(JSON.parse(tableContent(run.table)), JSON.parse(tableContent(reference.table))),
      largestDifference(leaderboardOf(run), board),
    ),
  }));
  const identical = identity.every((i) => i.table && i.selection && i.leaderboard && i.weights);

  const speedups = [...new Set(runs.map((r) => r.round))].map((round) => {
    const one = runs.find((r) => r.round === round && r.workers === 1)!;
    const two = runs.find((r) => r.round === round && r.workers === 2 && r.jobs !== null)!;
    return {
      round: round + 1,
      total: one.wallSeconds / two.wallSeconds,
      scan: one.scan.seconds / two.scan.seconds,
      arms: one.arms === null || two.arms === null ? null : one.arms.seconds / two.arms.seconds,
    };
  });
  const speedup = median(speedups.map((s) => s.total));
  const worstOverhead = Math.max(...rows.map((r) => r.overhead_share_of_wall ?? 0));
  printTable(
    ['round', '2 workers vs 1: total', 'scan', 'arms'],
    speedups.map((s) => [
      String(s.round),
      `${s.total.toFixed(2)}×`,
      `${s.scan.toFixed(2)}×`,
      s.arms === null ? '-' : `${s.arms.toFixed(2)}×`,
    ]),
  );
  const targets = [
    {
      target: 'queue overhead ≤ 2 % of the wall time',
      value: `${(100 * worstOverhead).toFixed(2)}%`,
      met: worstOverhead <= 0.02,
    },
    {
      target: `2 worker processes ≥ 1.8× one${measured.rounds > 1 ? ' (median of the rounds)' : ''}`,
      value: `${speedup.toFixed(2)}×`,
      met: speedup >= 1.8,
    },
    {
      target: scanOnly ? 'identical tables' : 'identical tables, selections and leaderboards (exact)',
      value: identical
        ? 'yes'
        : `no (largest difference ${Math.max(...identity.map((i) => i.largest_difference))})`,
      met: identical,
    },
  ];
  printTable(
    ['target', 'value', ''],
    targets.map((t) => [t.target, t.value, t.met ? 'met' : 'missed']),
  );
  const loadEnd = os.loadavg();
  const benchSeconds = (performance.now() - measured.benchStarted) / 1000;
  log(
    `load average at the end ${loadEnd.map((l) => l.toFixed(2)).join(' ')}; the benchmark took ${benchSeconds.toFixed(0)} s`,
  );
  await writeAtomically(
    measured.out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        backend: measured.engine.backend,
        threads: measured.engine.threads,
        cpus: os.availableParallelism(),
        load_average_start: measured.loadStart,
        load_average_end: loadEnd,
        bench_seconds: benchSeconds,
        model: `${DEMO.baseline.model} (createCifarResNet defaults), fresh weights from the seed, untrained: queue costs and identity do not depend on the weights`,
        scan: {
          strategy: basisStrategy.name,
          layers: work.layers.length,
          ratios: work.scan.ratios,
          calibration_images: measured.calibration.count,
          seed: work.scan.seed,
          coordinator_work_alone: measured.coordinator,
        },
        arms: scanOnly
          ? null
          : {
              names: work.arms.map((a) => a.name),
              recipe: work.recipe,
              train_images: work.train.count,
              test_images: work.test.count,
              baseline_test: baselineFigures,
              leaderboard: board,
            },
        rounds: measured.rounds,
        runs: rows,
        speedups_2_over_1_workers: speedups,
        speedup_2_over_1_workers: speedup,
        identity,
        identical,
        targets,
      },
      null,
      2,
    )}\n`,
  );
  log(`wrote ${measured.out}`);
}

try {
  await main();
} catch (error) {
  if (!(error instanceof BenchError)) throw error;
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exitCode = 2;
}
