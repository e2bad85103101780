/**
 * What running the demo's sensitivity scan through a Redis queue costs against worker threads (issue 16's
 * benchmark). The demo's `basis-selected` scan (basis strategy, ratios 0.25/0.5/0.75, every convolution,
 * 500 calibration images held out of the bundled subset's training images, seed 0) runs with `scanOnExecutor`
 * on (a) `localExecutor` with 2 worker threads, (b) a fresh redis-server with 1 and (c) with 2
 * `decompose worker` processes (built `apps/runner/dist/cli.js`), each queue configuration under a queue name
 * of its own, so that no finished job is reused.
 *
 * The ResNet-20 has fresh weights (fixed seed): neither the cost of moving work through Redis nor the
 * identity of the tables depends on training, and a training epoch would only lengthen the run.
 *
 * Per queue job, from BullMQ's timestamps (`timestamp` enqueued, `processedOn` started, `finishedOn` done) and
 * the time the coordinator saw the result: the dispatch delay (start − the later of enqueue and the end of
 * that worker's previous job: the time a free worker waited for work) and the delivery delay (result seen −
 * done). Their sum per worker over the scan's wall time is the queue overhead; the whole wall-time difference
 * against the 2 threads is printed too (it also holds the worker processes' start-up, tfjs imports and model
 * loads, which threads pay as well). Bytes per job: the blobs put once per scan, the job data and return value
 * as JSON, and Redis's `total_net_input_bytes`/`total_net_output_bytes` deltas, each divided by the jobs.
 * Writes bench/results/queue.json. Usage: node bench/dist/queue.js [--calibration N] [--limit-layers N]
 * [--seed N] [--out FILE]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basisStrategy } from '@decompose/basis';
import { findBundledSubset, readCifar10 } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { type Executor, type JobData, localExecutor, queueExecutor } from '@decompose/jobs';
import { startRedisServer } from '@decompose/jobs/testing';
import { calibrationSplit, PIPELINE_CATALOGUE, scanLayers, scanOnExecutor } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import type { SensitivityTable } from '@decompose/sensitivity';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { printTable, writeAtomically } from './output.js';

class QueueBenchOptionError extends BenchError {
  override readonly name = 'QueueBenchOptionError';
}

/** The demo's `basis-selected` arm (apps/runner/src/compare/demo.ts): its scan's layers, ratios and seed. */
const DEMO_SCAN = { layers: ['**.conv*'], ratios: [0.25, 0.5, 0.75], calibration: 500, seed: 0 };

const CLI = fileURLToPath(new URL('../../apps/runner/dist/cli.js', import.meta.url));

const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);

/** An executor that records the bytes of every blob put and when each unit's result reached the coordinator. */
function metered(inner: Executor) {
  const blobBytes: number[] = [];
  const resultSeenAt = new Map<number, number>();
  const executor: Executor = {
    blobs: {
      put: async (bytes) => {
        blobBytes.push(bytes.byteLength);
        return inner.blobs.put(bytes);
      },
      get: (id) => inner.blobs.get(id),
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
          resultSeenAt.set(index, Date.now());
          options.onResult?.(index, outcome, unit);
        },
      }),
    close: () => inner.close(),
  };
  return { executor, blobBytes, resultSeenAt };
}

/** Starts `decompose worker` on the queue and resolves once it takes jobs (its start-up is not timed). */
async function startWorker(url: string, queue: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--queue', url, '--queue-name', queue, '--concurrency', '1'],
    {
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
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

interface JobTiming {
  layer: string;
  waitMs: number;
  runMs: number;
  dispatchMs: number;
  deliveryMs: number;
  dataBytes: number;
  returnBytes: number;
}

/** Per-job timings and sizes from the queue's completed jobs; `seenAt` maps a layer to when its result came back. */
async function jobTimings(
  connection: Redis,
  name: string,
  seenAt: ReadonlyMap<string, number>,
): Promise<JobTiming[]> {
  const queue = new Queue<JobData>(name, { connection });
  try {
    const jobs = (await queue.getJobs(['completed'])).sort(
      (a, b) => (a.processedOn ?? 0) - (b.processedOn ?? 0),
    );
    // A free worker's previous job end, by worker name: dispatch is measured from it, not from the enqueue,
    // so that waiting behind other jobs (the queue doing its job) is not counted as overhead.
    const freeSince = new Map<string, number>();
    return jobs.map((job) => {
      const input = job.data.input as { layer?: unknown };
      const layer = typeof input.layer === 'string' ? input.layer : (job.id ?? '?');
      const processedOn = job.processedOn ?? Number.NaN;
      const finishedOn = job.finishedOn ?? Number.NaN;
      const worker = job.processedBy ?? '?';
      const ready = Math.max(job.timestamp, freeSince.get(worker) ?? 0);
      freeSince.set(worker, finishedOn);
      return {
        layer,
        waitMs: processedOn - job.timestamp,
        runMs: finishedOn - processedOn,
        dispatchMs: processedOn - ready,
        deliveryMs: (seenAt.get(layer) ?? Number.NaN) - finishedOn,
        dataBytes: JSON.stringify(job.data).length,
        returnBytes: JSON.stringify(job.returnvalue).length,
      };
    });
  } finally {
    await queue.close();
  }
}

/** A table without its wall time, which is all that may differ between executors. */
function content(table: SensitivityTable): string {
  const { seconds: _, ...rest } = table;
  return JSON.stringify(rest);
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      calibration: { type: 'string', default: String(DEMO_SCAN.calibration) },
      'limit-layers': { type: 'string' },
      seed: { type: 'string', default: String(DEMO_SCAN.seed) },
      out: { type: 'string' },
    },
  });
  const { integer } = flagParsers(QueueBenchOptionError);
  const calibrationCount = integer('calibration', values.calibration, 1);
  const seed = integer('seed', values.seed, 0);
  const limit =
    values['limit-layers'] === undefined ? null : integer('limit-layers', values['limit-layers'], 1);
  const out = values.out ?? fileURLToPath(new URL('../results/queue.json', import.meta.url));
  const loadStart = os.loadavg();

  const engine = await initEngine();
  log(
    `backend ${engine.backend} (${engine.threads} thread(s)); load average ${loadStart.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const dataset = await readCifar10(findBundledSubset());
  const { calibration } = calibrationSplit(dataset.train, calibrationCount, seed, '--calibration');
  const model = createCifarResNet({ arch: 'resnet20', seed });
  const { ratios } = DEMO_SCAN;
  const all = scanLayers(model, basisStrategy, ratios, {}, DEMO_SCAN.layers, '--limit-layers');
  const layers = limit === null ? all : all.slice(0, limit);
  log(
    `scan: ${layers.length} layers × ${ratios.length} ratios with basis on ${calibration.count} calibration images`,
  );
  const request = {
    model,
    strategy: basisStrategy,
    strategySpecifier: 'basis',
    layers,
    layersField: '--limit-layers',
    ratios,
    calibration,
    seed,
  };

  const redis = await startRedisServer();
  const admin = new Redis(redis.url, { maxRetriesPerRequest: null });
  const workers: ChildProcess[] = [];
  const runs: {
    name: string;
    wallSeconds: number;
    table: SensitivityTable;
    blobBytes: number[];
    jobs: JobTiming[] | null;
    workers: number;
    net: { input: number; output: number } | null;
  }[] = [];
  try {
    {
      const m = metered(await localExecutor({ threads: 2, catalogue: PIPELINE_CATALOGUE }));
      const started = performance.now();
      try {
        const table = await scanOnExecutor(m.executor, request);
        runs.push({
          name: 'local, 2 threads',
          wallSeconds: (performance.now() - started) / 1000,
          table,
          blobBytes: m.blobBytes,
          jobs: null,
          workers: 2,
          net: null,
        });
      } finally {
        await m.executor.close();
      }
      log(`local, 2 threads: ${runs.at(-1)?.wallSeconds.toFixed(1)} s`);
    }
    for (const count of [1, 2]) {
      const name = `bench-queue-${count}w-${Date.now()}`;
      // Workers start before the clock: their start-up (node, tfjs, the catalogue) is not what is measured.
      for (let i = 0; i < count; i++) workers.push(await startWorker(redis.url, name));
      const m = metered(await queueExecutor({ url: redis.url, queue: name }));
      const before = await netBytes(admin);
      const started = performance.now();
      let table: SensitivityTable;
      try {
        table = await scanOnExecutor(m.executor, request);
      } finally {
        await m.executor.close();
      }
      const wallSeconds = (performance.now() - started) / 1000;
      const after = await netBytes(admin);
      // Units are in `layers` order (no cache), so index i is layers[i].
      const seenAt = new Map([...m.resultSeenAt].map(([index, at]) => [layers[index] ?? '?', at]));
      const jobs = await jobTimings(admin, name, seenAt);
      runs.push({
        name: `queue, ${count} worker process${count > 1 ? 'es' : ''}`,
        wallSeconds,
        table,
        blobBytes: m.blobBytes,
        jobs,
        workers: count,
        net: { input: after.input - before.input, output: after.output - before.output },
      });
      log(`queue, ${count} worker(s): ${wallSeconds.toFixed(1)} s`);
      await Promise.all(workers.splice(0).map(stopWorker));
    }
  } finally {
    await Promise.all(workers.map(stopWorker));
    admin.disconnect();
    await redis.stop();
  }
  model.dispose();

  const reference = runs[0]!;
  const identical = runs.every((r) => content(r.table) === content(reference.table));
  const metricsIdentical = runs.every((r) =>
    r.table.entries.every((e, i) => {
      const other = reference.table.entries[i];
      return (
        other !== undefined &&
        e.metric.accuracy === other.metric.accuracy &&
        e.metric.loss === other.metric.loss
      );
    }),
  );
  const rows = runs.map((r) => {
    const jobs = r.jobs ?? [];
    // The local executor has no jobs to read; it ran one unit per layer, as the queue does.
    const n = Math.max(r.jobs?.length ?? r.table.layers.length, 1);
    const overheadMs = jobs.map((j) => j.dispatchMs + j.deliveryMs);
    // Overhead on the critical path: each worker pays its jobs' dispatch and delivery one after another.
    const overheadShare = r.jobs === null ? null : sum(overheadMs) / r.workers / 1000 / r.wallSeconds;
    const blobs = sum(r.blobBytes);
    return {
      executor: r.name,
      workers: r.workers,
      wall_seconds: r.wallSeconds,
      jobs: r.jobs?.length ?? r.table.layers.length,
      mean_job_run_seconds: r.jobs === null ? null : mean(jobs.map((j) => j.runMs)) / 1000,
      mean_job_wait_seconds: r.jobs === null ? null : mean(jobs.map((j) => j.waitMs)) / 1000,
      mean_dispatch_ms: r.jobs === null ? null : mean(jobs.map((j) => j.dispatchMs)),
      mean_delivery_ms: r.jobs === null ? null : mean(jobs.map((j) => j.deliveryMs)),
      overhead_share_of_wall: overheadShare,
      wall_vs_local_threads: r.wallSeconds / reference.wallSeconds,
      blob_bytes_total: blobs,
      blob_bytes_per_job: blobs / n,
      job_data_bytes_per_job: r.jobs === null ? null : mean(jobs.map((j) => j.dataBytes)),
      return_value_bytes_per_job: r.jobs === null ? null : mean(jobs.map((j) => j.returnBytes)),
      redis_net_input_bytes_per_job: r.net === null ? null : r.net.input / n,
      redis_net_output_bytes_per_job: r.net === null ? null : r.net.output / n,
      per_job: r.jobs,
    };
  });
  const one = rows[1]!;
  const two = rows[2]!;
  const speedup = one.wall_seconds / two.wall_seconds;
  const worstOverhead = Math.max(...rows.map((r) => r.overhead_share_of_wall ?? 0));
  const kb = (bytes: number | null) => (bytes === null ? '-' : `${(bytes / 1024).toFixed(1)} KiB`);
  printTable(
    [
      'executor',
      'wall',
      'vs threads',
      'dispatch+delivery/job',
      'overhead',
      'blobs/job',
      'data+return/job',
      'redis in/out per job',
    ],
    rows.map((r) => [
      r.executor,
      `${r.wall_seconds.toFixed(1)} s`,
      `${r.wall_vs_local_threads.toFixed(2)}×`,
      r.mean_dispatch_ms === null
        ? '-'
        : `${r.mean_dispatch_ms.toFixed(0)}+${(r.mean_delivery_ms ?? 0).toFixed(0)} ms`,
      r.overhead_share_of_wall === null ? '-' : `${(100 * r.overhead_share_of_wall).toFixed(2)}%`,
      kb(r.blob_bytes_per_job),
      r.job_data_bytes_per_job === null
        ? '-'
        : `${kb(r.job_data_bytes_per_job)}+${kb(r.return_value_bytes_per_job)}`,
      r.redis_net_input_bytes_per_job === null
        ? '-'
        : `${kb(r.redis_net_input_bytes_per_job)}/${kb(r.redis_net_output_bytes_per_job)}`,
    ]),
  );
  const targets = [
    {
      target: 'queue overhead ≤ 2 % of the wall time',
      value: `${(100 * worstOverhead).toFixed(2)}%`,
      met: worstOverhead <= 0.02,
    },
    { target: '2 worker processes ≥ 1.8× one', value: `${speedup.toFixed(2)}×`, met: speedup >= 1.8 },
    {
      target: 'identical tables',
      value: identical ? 'yes' : metricsIdentical ? 'metrics only' : 'no',
      met: identical,
    },
  ];
  printTable(
    ['target', 'value', ''],
    targets.map((t) => [t.target, t.value, t.met ? 'met' : 'missed']),
  );
  const loadEnd = os.loadavg();
  log(`load average at the end ${loadEnd.map((l) => l.toFixed(2)).join(' ')}`);
  await writeAtomically(
    out,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        backend: engine.backend,
        threads: engine.threads,
        cpus: os.availableParallelism(),
        load_average_start: loadStart,
        load_average_end: loadEnd,
        model:
          'resnet20 (createCifarResNet defaults), fresh weights from the seed, untrained: queue costs and identity do not depend on the weights',
        strategy: basisStrategy.name,
        layers: layers.length,
        ratios,
        calibration_images: calibration.count,
        seed,
        runs: rows,
        speedup_2_over_1_workers: speedup,
        tables_identical: identical,
        metrics_identical: metricsIdentical,
        targets,
      },
      null,
      2,
    )}\n`,
  );
  log(`wrote ${out}`);
}

try {
  await main();
} catch (error) {
  if (!(error instanceof BenchError)) throw error;
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exitCode = 2;
}
