import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Cifar10Images } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { resolveStrategy, ScanUnitsError } from '@decompose/pipeline';
import type { ScanEntry, SensitivityTable } from '@decompose/sensitivity';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultWorkers, resolveConfig } from '../config.js';
import { ConfigError } from '../errors.js';
import { Console } from '../progress.js';
import { sensitivityConfigSchema } from './config.js';
import { runScan, type ScanRequest, scanWorkerCount } from './scan.js';

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

describe('sensitivity scan as units, on this thread and on worker threads', () => {
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

  it('gives the table of the single-thread scan on 2 workers, and resumes from its cache', async () => {
    const cacheFile = path.join(dir, 'parallel.jsonl');
    const printed: string[] = [];
    const parallel = await runScan(
      { ...request, cacheFile, workers: 2 },
      new Console(false, (l) => printed.push(l)),
    );
    expect(printed[0]).toMatch(/ in 2 worker threads$/);
    // The default candidates: every convolution and the Dense head, as applyStrategy selects by default.
    expect(single.layers.map((l) => l.layer)).toEqual(['conv1', 'conv2', 'conv3', 'conv4', 'logits']);
    expect(parallel.layers).toEqual(single.layers);
    expect(parallel.calibrationSize).toBe(40);
    // Both run the same units on the same bytes: the same numbers exactly, not only close.
    const { seconds: _p, entries: parallelEntries, ...parallelRest } = parallel;
    const { seconds: _s, entries: singleEntries, ...singleRest } = single;
    expect(parallelRest).toEqual(singleRest);
    expect(parallelEntries).toEqual(singleEntries);
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
  });

  it('names the layers whose units failed, after the others finished and were cached', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/faulty-strategy.mjs', import.meta.url));
    const { strategy } = await resolveStrategy(fixture, 'strategy');
    const cacheFile = path.join(dir, 'faulty.jsonl');
    const failed = runScan(
      {
        ...request,
        strategy,
        strategySpecifier: fixture,
        cacheFile,
        workers: 2,
      },
      new Console(false, () => {}),
    );
    await expect(failed).rejects.toThrow(ScanUnitsError);
    await expect(failed).rejects.toThrow(
      /the scan of 1 layer failed \(4 other layers finished and are cached; .*\n {2}conv3: Error: injected failure at conv3$/,
    );
    const cachedLayers = (await lines(cacheFile)).map(
      (l) => (JSON.parse(l) as { entry: ScanEntry }).entry.layer,
    );
    expect(new Set(cachedLayers)).toEqual(new Set(['conv1', 'conv2', 'conv4', 'logits']));
    expect(cachedLayers).toHaveLength(8);

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
      /the scan of 5 layers failed .*\n {2}conv1: PluginImportError: .*no-such-plugin/s,
    );
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
