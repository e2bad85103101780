import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker as NodeWorker } from 'node:worker_threads';
import type { Cifar10Images } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { resolveStrategy } from '@decompose/pipeline';
import type { ScanEntry, SensitivityTable } from '@decompose/sensitivity';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { defaultWorkers, resolveConfig } from '../config.js';
import { ConfigError, ScanWorkerError } from '../errors.js';
import { Console } from '../progress.js';
import { sensitivityConfigSchema } from './config.js';
import { interleaveLayers } from './parallel.js';
import { runScan, type ScanRequest, scanWorkerCount } from './scan.js';

// Every worker thread the scan starts, and whether it has exited: a failed scan must leave none running.
const threads = vi.hoisted(() => ({ started: 0, running: new Set<NodeWorker>() }));
vi.mock('node:worker_threads', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:worker_threads')>();
  class TrackedWorker extends actual.Worker {
    constructor(...args: ConstructorParameters<typeof actual.Worker>) {
      super(...args);
      threads.started++;
      threads.running.add(this);
      this.on('exit', () => threads.running.delete(this));
    }
  }
  return { ...actual, Worker: TrackedWorker };
});

/** A small functional model with a residual add, so some layers' downstream parts read a skip tensor. */
function residualModel(): tfl.LayersModel {
  let seed = 1;
  const conv = (name: string, filters: number, strides = 1) =>
    tfl.layers.conv2d({
      name,
      filters,
      kernelSize: 3,
      strides,
      padding: 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }),
    });
  const bn = (name: string) => tfl.layers.batchNormalization({ name });
  const relu = (name: string) => tfl.layers.reLU({ name });
  const input = tfl.input({ shape: [32, 32, 3], name: 'images' });
  const stem = relu('relu1').apply(bn('bn1').apply(conv('conv1', 8).apply(input))) as tfl.SymbolicTensor;
  const inner = relu('relu2').apply(bn('bn2').apply(conv('conv2', 8).apply(stem)));
  const branch = bn('bn3').apply(conv('conv3', 8).apply(inner)) as tfl.SymbolicTensor;
  const sum = relu('relu3').apply(tfl.layers.add({ name: 'add' }).apply([branch, stem]));
  const down = relu('relu4').apply(bn('bn4').apply(conv('conv4', 16, 2).apply(sum)));
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(down);
  const logits = tfl.layers.dense({ units: 10, name: 'logits', kernelInitializer: 'glorotUniform' });
  return tfl.model({ inputs: input, outputs: logits.apply(pooled) as tfl.SymbolicTensor, name: 'residual' });
}

/** `count` images of reproducible noise with labels 0..9 in turn. */
function noiseImages(count: number): Cifar10Images {
  const images = new Uint8Array(count * 32 * 32 * 3);
  let state = 12345;
  for (let i = 0; i < images.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    images[i] = state >>> 24;
  }
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 10), count };
}

const lines = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n');

describe('parallel sensitivity scan', () => {
  let dir: string;
  let model: tfl.LayersModel;
  let request: Omit<ScanRequest, 'cacheFile'>;
  let single: SensitivityTable;
  beforeAll(async () => {
    await initEngine();
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-parallel-scan-'));
    model = residualModel();
    const { strategy } = await resolveStrategy('svd', 'strategy');
    const calibration = noiseImages(40);
    request = {
      model,
      strategy,
      strategySpecifier: 'svd',
      ratios: [0.25, 0.5],
      calibration,
      fineTuneData: calibration,
      fineTuneSteps: 0,
      fineTuneLr: 0.01,
      measureTime: false,
      batch: 16,
      seed: 3,
      layersField: 'layers',
    };
    single = await runScan(
      { ...request, cacheFile: path.join(dir, 'single.jsonl') },
      new Console(false, () => {}),
    );
  });
  afterAll(async () => {
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('interleaves the layers over the workers in model order, never more groups than layers', () => {
    expect(interleaveLayers(['a', 'b', 'c', 'd', 'e'], 2)).toEqual([
      ['a', 'c', 'e'],
      ['b', 'd'],
    ]);
    expect(interleaveLayers(['a', 'b'], 4)).toEqual([['a'], ['b']]);
  });

  it('gives the table of the single-thread scan on 2 workers, and resumes from its cache', async () => {
    const cacheFile = path.join(dir, 'parallel.jsonl');
    const printed: string[] = [];
    const before = threads.started;
    const parallel = await runScan(
      { ...request, cacheFile, workers: 2 },
      new Console(false, (l) => printed.push(l)),
    );
    expect(threads.started - before).toBe(2);
    expect(threads.running.size).toBe(0);
    expect(printed[0]).toMatch(/ in 2 worker threads$/);
    // The default candidates: every convolution and the Dense head, as applyStrategy selects by default.
    expect(single.layers.map((l) => l.layer)).toEqual(['conv1', 'conv2', 'conv3', 'conv4', 'logits']);
    expect(parallel.layers).toEqual(single.layers);
    expect(parallel.calibrationSize).toBe(40);
    expect(parallel.baseline.accuracy).toBeCloseTo(single.baseline.accuracy, 6);
    expect(parallel.baseline.loss).toBeCloseTo(single.baseline.loss, 6);
    const { seconds: _p, baseline: _pb, entries: parallelEntries, ...parallelRest } = parallel;
    const { seconds: _s, baseline: _sb, entries: singleEntries, ...singleRest } = single;
    expect(parallelRest).toEqual(singleRest);
    expect(parallelEntries.map((e) => [e.layer, e.ratio])).toEqual(
      singleEntries.map((e) => [e.layer, e.ratio]),
    );
    for (const [i, entry] of parallelEntries.entries()) {
      const { metric, ...rest } = entry;
      const { metric: expected, ...expectedRest } = singleEntries[i]!;
      expect(rest).toEqual(expectedRest);
      expect(metric.accuracy).toBeCloseTo(expected.accuracy, 6);
      expect(metric.loss).toBeCloseTo(expected.loss, 6);
    }
    expect(await lines(cacheFile)).toHaveLength(parallelEntries.length);

    // A killed parallel scan: three entries reached the cache; one is marked to prove it is reused.
    const kept = (await lines(cacheFile)).slice(0, 3);
    const marked = JSON.parse(kept[0]!) as { key: string; entry: ScanEntry };
    marked.entry.metric.accuracy = 0.123;
    kept[0] = JSON.stringify(marked);
    await writeFile(cacheFile, `${kept.join('\n')}\n`);
    const again: string[] = [];
    const resumed = await runScan(
      { ...request, cacheFile, workers: 2 },
      new Console(false, (l) => again.push(l)),
    );
    expect(again[0]).toMatch(/ in 2 worker threads \(3 entries cached in /);
    const after = await lines(cacheFile);
    expect(after).toHaveLength(parallelEntries.length); // only the missing entries were computed and appended
    expect(after.slice(0, 3)).toEqual(kept);
    const reused = resumed.entries.find(
      (e) => e.layer === marked.entry.layer && e.ratio === marked.entry.ratio,
    );
    expect(reused?.metric.accuracy).toBe(0.123);
    expect(resumed.entries.map((e) => [e.layer, e.ratio])).toEqual(
      parallelEntries.map((e) => [e.layer, e.ratio]),
    );
    expect(threads.running.size).toBe(0);
  });

  it('rejects with ScanWorkerError naming the worker and the cause, and stops every worker', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/faulty-strategy.mjs', import.meta.url));
    const { strategy } = await resolveStrategy(fixture, 'strategy');
    const before = threads.started;
    const failed = runScan(
      {
        ...request,
        strategy,
        strategySpecifier: fixture,
        cacheFile: path.join(dir, 'faulty.jsonl'),
        workers: 2,
      },
      new Console(false, () => {}),
    );
    await expect(failed).rejects.toThrow(ScanWorkerError);
    await expect(failed).rejects.toThrow(
      /^Sensitivity scan worker 0 \(layers conv1, conv3, logits\) failed: Error: injected failure at conv3\./,
    );
    expect(threads.started - before).toBe(2);
    expect(threads.running.size).toBe(0);

    const unresolvable = runScan(
      {
        ...request,
        strategySpecifier: './no-such-plugin.js',
        cacheFile: path.join(dir, 'none.jsonl'),
        workers: 2,
      },
      new Console(false, () => {}),
    );
    await expect(unresolvable).rejects.toThrow(
      /^Sensitivity scan worker \d .*PluginImportError: .*no-such-plugin/,
    );
    expect(threads.running.size).toBe(0);
  });

  it('validates --workers like the other fields, and scans on one thread per core by default', async () => {
    const flags = { modelDir: 'm', strategy: 'svd', out: 'o', workers: -1 };
    await expect(resolveConfig(sensitivityConfigSchema, flags)).rejects.toThrow(ConfigError);
    await expect(resolveConfig(sensitivityConfigSchema, flags)).rejects.toThrow(
      '--workers: got -1; workers must be a whole number in [0, 256] (0 or 1 scans on this thread)',
    );
    const defaults = await resolveConfig(sensitivityConfigSchema, { ...flags, workers: undefined });
    expect(defaults.workers).toBe(defaultWorkers());
  });

  it('counts the threads a scan runs on: none below 2, at most one per layer, none with fine-tune or timing', () => {
    const plain = { fineTuneSteps: 0, measureTime: false };
    expect(scanWorkerCount({ ...plain, workers: 1 }, 10)).toBe(0);
    expect(scanWorkerCount({ ...plain, workers: 4 }, 3)).toBe(3);
    expect(scanWorkerCount({ ...plain, workers: 4 }, 1)).toBe(0);
    expect(scanWorkerCount({ ...plain, fineTuneSteps: 5, workers: 4 }, 10)).toBe(0);
    expect(scanWorkerCount({ ...plain, measureTime: true, workers: 4 }, 10)).toBe(0);
  });
});
