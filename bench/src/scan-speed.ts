/**
 * What the sensitivity scan costs against training the baseline on the same data (issue 7: at most 10%). On
 * CIFAR ResNet-20 (shortcut B, PyTorch init) and the bundled subset, with the calibration images held out of the
 * training images as `bench:selection` and `decompose train --hold-out` do (`splitCalibration`):
 *
 * - the scan of every 3×3 conv × each ratio with the basis strategy, through the old path (an `evaluate`
 *   callback running each whole decomposed model, `@decompose/train`'s `evaluate`, batches of 100) and through
 *   the calibration path (`calibration`: from the activations in front of each layer, BatchNorms folded) at
 *   each `--batches` size, with the largest metric difference between the two;
 * - one training epoch of the baseline on the remaining images (batch 128, SGD as `decompose train`), with each
 *   `--workers` count; the real recipe trains 15 epochs (`--recipe-epochs`), so scan / (15 × epoch) is the ratio.
 *
 * The model is untrained: speed does not depend on the weights. Times are wall-clock and process CPU (all
 * threads, workers included); on a shared machine the CPU-time ratio is the one to trust. Writes
 * bench/results/scan-speed.json. Usage: node bench/dist/scan-speed.js [--calibration N] [--ratios LIST]
 * [--batches LIST] [--workers LIST] [--recipe-epochs N] [--layers N] [--no-old] [--seed N] [--out FILE]
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basisStrategy } from '@decompose/basis';
import { findBundledSubset, readCifar10, splitCalibration } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import { type SensitivityTable, scanSensitivity } from '@decompose/sensitivity';
import { evaluate, train } from '@decompose/train';
import { labelledImages } from './calibration-images.js';
import { printTable, writeAtomically } from './output.js';
import { candidateLayers } from './selection-plan.js';

/** Wall-clock and process CPU seconds of one run. */
interface Timed {
  wallSeconds: number;
  cpuSeconds: number;
}

async function timed<T>(run: () => Promise<T>): Promise<Timed & { value: T }> {
  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  const value = await run();
  const cpu = process.cpuUsage(cpuStart);
  return {
    value,
    wallSeconds: (performance.now() - wallStart) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/** The largest absolute difference of accuracy or loss between two scans of the same entries. */
function largestMetricDifference(a: SensitivityTable, b: SensitivityTable): number {
  const pairs = [[a.baseline, b.baseline], ...a.entries.map((e, i) => [e.metric, b.entries[i]!.metric])];
  return Math.max(
    ...pairs.map(([x, y]) => Math.max(Math.abs(x!.accuracy - y!.accuracy), Math.abs(x!.loss - y!.loss))),
  );
}

const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const list = (text: string) => text.split(',').map((item) => Number(item.trim()));

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      calibration: { type: 'string', default: '500' },
      ratios: { type: 'string', default: '0.125,0.25,0.5,0.75' },
      batches: { type: 'string', default: '100,250,500' },
      workers: { type: 'string', default: '0,2' },
      'recipe-epochs': { type: 'string', default: '15' },
      layers: { type: 'string' },
      'no-old': { type: 'boolean', default: false },
      seed: { type: 'string', default: '0' },
      out: { type: 'string' },
    },
  });
  const seed = Number(values.seed);
  const ratios = list(values.ratios);
  const recipeEpochs = Number(values['recipe-epochs']);
  const out = values.out ?? fileURLToPath(new URL('../results/scan-speed.json', import.meta.url));

  const engine = await initEngine();
  log(`backend ${engine.backend} (${engine.threads} thread(s))`);
  const dataset = await readCifar10(findBundledSubset());
  const split = splitCalibration(dataset.train, { count: Number(values.calibration), seed });
  const calibration = split.calibration;
  const model = createCifarResNet({ arch: 'resnet20', shortcut: 'B', init: 'pytorch', seed });
  const allLayers = candidateLayers(model, basisStrategy).map((c) => c.layer);
  const layers = values.layers === undefined ? allLayers : allLayers.slice(0, Number(values.layers));
  const scanned = { model, strategy: basisStrategy, layers, ratios, seed };
  log(
    `scan: ${layers.length} layers × ${ratios.length} ratios on ${calibration.count} calibration images; ` +
      `training: ${split.train.count} images`,
  );

  const scans: Record<string, unknown>[] = [];
  let old: (Timed & { value: SensitivityTable }) | null = null;
  if (!values['no-old']) {
    old = await timed(() =>
      scanSensitivity({
        ...scanned,
        evaluate: async (m) => {
          const { accuracy, loss } = await evaluate(m, calibration, 100);
          return { accuracy, loss };
        },
        calibrationSize: calibration.count,
      }),
    );
    log(
      `old path (whole model, evaluate callback, batch 100): ${old.wallSeconds.toFixed(1)} s, ${old.cpuSeconds.toFixed(1)} CPU s`,
    );
    scans.push({
      path: 'evaluate-callback',
      batch: 100,
      wall_seconds: old.wallSeconds,
      cpu_seconds: old.cpuSeconds,
    });
  }
  const images = labelledImages(calibration);
  for (const batchSize of list(values.batches)) {
    const run = await timed(() => scanSensitivity({ ...scanned, calibration: { ...images, batchSize } }));
    const difference = old === null ? null : largestMetricDifference(old.value, run.value);
    log(
      `calibration path, batch ${batchSize}: ${run.wallSeconds.toFixed(1)} s, ${run.cpuSeconds.toFixed(1)} CPU s` +
        (difference === null
          ? ''
          : `; largest metric difference from the old path ${difference.toExponential(2)}`),
    );
    scans.push({
      path: 'calibration',
      batch: batchSize,
      wall_seconds: run.wallSeconds,
      cpu_seconds: run.cpuSeconds,
      largest_metric_difference: difference,
    });
  }
  images.images.dispose();

  const epochs: Record<string, number>[] = [];
  for (const workers of list(values.workers)) {
    const baseline = createCifarResNet({ arch: 'resnet20', shortcut: 'B', init: 'pytorch', seed });
    const run = await timed(() =>
      train({
        model: baseline,
        trainData: split.train,
        epochs: 1,
        batchSize: 128,
        seed,
        schedule: { type: 'cosine', lr: 0.1 },
        optimizer: { momentum: 0.9, weightDecay: 5e-4, weightDecayScope: 'all' },
        workers,
      }),
    );
    baseline.dispose();
    log(`one epoch, ${workers} workers: ${run.wallSeconds.toFixed(1)} s, ${run.cpuSeconds.toFixed(1)} CPU s`);
    epochs.push({ workers, wall_seconds: run.wallSeconds, cpu_seconds: run.cpuSeconds });
  }

  const ratioRows = scans.flatMap((scan) =>
    epochs.map((epoch) => ({
      path: scan.path as string,
      batch: scan.batch as number,
      workers: epoch.workers!,
      wall_ratio: (scan.wall_seconds as number) / (recipeEpochs * epoch.wall_seconds!),
      cpu_ratio: (scan.cpu_seconds as number) / (recipeEpochs * epoch.cpu_seconds!),
    })),
  );
  printTable(
    ['scan path', 'batch', 'train workers', `scan / ${recipeEpochs} epochs (wall)`, '(CPU)'],
    ratioRows.map((r) => [
      r.path,
      String(r.batch),
      String(r.workers),
      `${(100 * r.wall_ratio).toFixed(1)}%`,
      `${(100 * r.cpu_ratio).toFixed(1)}%`,
    ]),
  );
  await writeAtomically(
    out,
    `${JSON.stringify(
      {
        backend: engine.backend,
        threads: engine.threads,
        model: 'resnet20 shortcut B, untrained (speed does not depend on the weights)',
        strategy: basisStrategy.name,
        layers: layers.length,
        ratios,
        calibration_images: calibration.count,
        train_images: split.train.count,
        recipe_epochs: recipeEpochs,
        scans,
        epochs,
        ratios_to_training: ratioRows,
      },
      null,
      2,
    )}\n`,
  );
  log(`wrote ${out}`);
}

await main();
