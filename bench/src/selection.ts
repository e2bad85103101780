/**
 * Does sensitivity-based layer selection (arXiv 2408.06024) beat decomposing every layer, or random layers, at
 * the same compression? On CIFAR ResNet-20 (shortcut B, PyTorch init) trained on the bundled subset:
 *
 * 1. a trained baseline (`--baseline-dir` from `decompose train`, or trained here on the training split);
 * 2. a scan: each candidate layer (every trainable 3×3 conv) alone as a basis convolution at each ratio, weights
 *    from the trained layer, no fine-tune, accuracy and loss on a calibration split held out of the training set;
 * 3. arms of the same parameter reduction over the candidate layers (kernel weights of the 3×3 convs; 1×1
 *    shortcut projections, batch norm and the classifier are not counted): `selected` (selectPerLayer on the
 *    scan), `all_layers` (one ratio everywhere), `random` (random layers at random scanned ratios, several
 *    draws); each is fine-tuned with the same epochs, schedule and seed, then evaluated on the test set.
 *
 * Writes bench/results/selection.json and prints a table. Everything finished is cached in the work directory,
 * so a killed run continues where it stopped. Run `node bench/dist/selection.js --help` for the flags.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basisStrategy } from '@decompose/basis';
import {
  type Cifar10Images,
  createBatchStream,
  findBundledSubset,
  readCifar10,
  splitCalibration,
} from '@decompose/cifar10';
import { applyStrategy, costTable, reestimateBatchNorm } from '@decompose/core';
import { createGradientComputer, type EngineInfo, fileSystem, initEngine } from '@decompose/engine';
import { calibrationSeenInTraining, holdOutSchema } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import {
  type Budget,
  type Metric,
  type ScanEntry,
  type Selection,
  type SensitivityMetric,
  type SensitivityTable,
  scanEntryKey,
  scanSensitivity,
  selectGreedy,
  selectPerLayer,
} from '@decompose/sensitivity';
import {
  augmentedImages,
  type EpochMetrics,
  evaluate,
  METRICS_FILE,
  type TrainOptions,
  train,
} from '@decompose/train';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { firstImages, labelledImages } from './calibration-images.js';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { printTable, writeAtomically } from './output.js';
import { median } from './samples.js';
import {
  type Candidate,
  candidateLayers,
  type PlanCost,
  type PlanLayer,
  planCost,
  randomPlan,
  uniformPlan,
} from './selection-plan.js';
import { WorkDir, WorkDirMismatchError } from './selection-work.js';

const USAGE = `node bench/dist/selection.js [flags]
  --baseline-dir DIR      trained baseline from \`decompose train\` (DIR/model/model.json, DIR/summary.json);
                          train it with --hold-out <calibration> --hold-out-seed <seed> to keep the
                          calibration images out of its training
  --baseline-epochs N     epochs of the baseline trained here when no --baseline-dir (default 15)
  --arm-training MODE     fine-tune: each arm decomposes the trained baseline and fine-tunes it (default);
                          scratch: each arm's architecture is initialised afresh and trained with the
                          baseline's recipe (lr 0.1, --baseline-epochs), as the paper trains basis networks
  --fine-tune-epochs N    fine-tune epochs of every arm (default 2; 0 tests the arms as rewritten)
  --fine-tune-seeds LIST  fine-tune each arm once per seed, from the same rewritten model, and report the
                          mean and spread (default: --seed; fine-tune mode only)
  --bn-images N           re-estimate the BatchNorm statistics of each rewritten model on N augmented
                          training images before its fine-tune (default 1024; 0: keep the baseline's)
  --fine-tune-lr X        peak lr of the fine-tune's cosine schedule (default 0.01)
  --calibration N         images held out of the training set for the scan (default 500)
  --ratios LIST           scanned ratios (default 0.125,0.25,0.5,0.75)
  --reduction X           fraction of candidate-layer params to remove (default 0.4)
  --random-draws N        draws of the random arm (default 3)
  --seed N                seed of split, baseline, surgery, fine-tune (default 0)
  --limit-train N         use only the first N training images (smoke runs)
  --limit-test N          use only the first N test images (smoke runs)
  --batch N               training batch size (default 128)
  --workers N             gradient workers of every training (default 0: this thread)
  --timing-batch N        batch of the timed throughput steps (default 32)
  --timing-steps N        timed steps per measurement, after one warm-up (default 3)
  --work-dir DIR          cache of a resumable run (default bench/results/selection-work)
  --out FILE              result JSON (default bench/results/selection.json)`;

/** Thrown for a bad flag value. */
export class SelectionBenchOptionError extends BenchError {
  override readonly name = 'SelectionBenchOptionError';
}

/** How an arm's model is trained before it is tested: see the `--arm-training` flag. */
type ArmTraining = 'fine-tune' | 'scratch';

interface Config {
  baselineDir: string | null;
  baselineEpochs: number;
  armTraining: ArmTraining;
  fineTuneEpochs: number;
  fineTuneSeeds: number[];
  fineTuneLr: number;
  bnImages: number;
  calibration: number;
  ratios: number[];
  reduction: number;
  randomDraws: number;
  seed: number;
  limitTrain: number | null;
  limitTest: number | null;
  batch: number;
  workers: number;
  timingBatch: number;
  timingSteps: number;
  workDir: string;
  out: string;
}

function parseConfig(argv: string[]): Config | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      'baseline-dir': { type: 'string' },
      'baseline-epochs': { type: 'string', default: '15' },
      'arm-training': { type: 'string', default: 'fine-tune' },
      'fine-tune-epochs': { type: 'string', default: '2' },
      'fine-tune-seeds': { type: 'string' },
      'bn-images': { type: 'string', default: '1024' },
      'fine-tune-lr': { type: 'string', default: '0.01' },
      calibration: { type: 'string', default: '500' },
      ratios: { type: 'string', default: '0.125,0.25,0.5,0.75' },
      reduction: { type: 'string', default: '0.4' },
      'random-draws': { type: 'string', default: '3' },
      seed: { type: 'string', default: '0' },
      'limit-train': { type: 'string' },
      'limit-test': { type: 'string' },
      batch: { type: 'string', default: '128' },
      workers: { type: 'string', default: '0' },
      'timing-batch': { type: 'string', default: '32' },
      'timing-steps': { type: 'string', default: '3' },
      'work-dir': { type: 'string' },
      out: { type: 'string' },
    },
  });
  if (values.help) return null;
  const { integer, fraction } = flagParsers(SelectionBenchOptionError);
  const ratios = values.ratios.split(',').map((r) => fraction('ratios', r.trim()));
  const lr = Number(values['fine-tune-lr']);
  if (!(lr > 0))
    throw new SelectionBenchOptionError(`--fine-tune-lr must be > 0, got '${values['fine-tune-lr']}'.`);
  const armTraining = values['arm-training'];
  if (armTraining !== 'fine-tune' && armTraining !== 'scratch') {
    throw new SelectionBenchOptionError(
      `--arm-training must be 'fine-tune' or 'scratch', got '${armTraining}'.`,
    );
  }
  const seed = integer('seed', values.seed, 0);
  const seedsText = values['fine-tune-seeds'];
  if (seedsText !== undefined && armTraining === 'scratch') {
    throw new SelectionBenchOptionError(
      '--fine-tune-seeds is for --arm-training fine-tune; from scratch each arm trains with --seed.',
    );
  }
  const fineTuneSeeds =
    seedsText === undefined
      ? [seed]
      : [...new Set(seedsText.split(',').map((t) => integer('fine-tune-seeds', t.trim(), 0)))];
  const results = fileURLToPath(new URL('../results/', import.meta.url));
  const optional = (flag: string, text: string | undefined) =>
    text === undefined ? null : integer(flag, text, 1);
  return {
    baselineDir: values['baseline-dir'] === undefined ? null : path.resolve(values['baseline-dir']),
    baselineEpochs: integer('baseline-epochs', values['baseline-epochs'], 1),
    armTraining,
    fineTuneEpochs: integer('fine-tune-epochs', values['fine-tune-epochs'], 0),
    fineTuneSeeds,
    fineTuneLr: lr,
    bnImages: integer('bn-images', values['bn-images'], 0),
    calibration: integer('calibration', values.calibration, 1),
    ratios: [...new Set(ratios)].sort((a, b) => a - b),
    reduction: fraction('reduction', values.reduction),
    randomDraws: integer('random-draws', values['random-draws'], 1),
    seed,
    limitTrain: optional('limit-train', values['limit-train']),
    limitTest: optional('limit-test', values['limit-test']),
    batch: integer('batch', values.batch, 1),
    workers: integer('workers', values.workers, 0),
    timingBatch: integer('timing-batch', values['timing-batch'], 1),
    timingSteps: integer('timing-steps', values['timing-steps'], 1),
    workDir: path.resolve(values['work-dir'] ?? path.join(results, 'selection-work')),
    out: path.resolve(values.out ?? path.join(results, 'selection.json')),
  };
}

const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);

/** Peak learning rate of the baseline recipe (and of arms trained from scratch with it). */
const BASELINE_LR = 0.1;

/** The untrained baseline network: ResNet-20, option-B shortcuts, PyTorch init, seeded. */
function freshResNet(config: Config): tfl.LayersModel {
  return createCifarResNet({ arch: 'resnet20', shortcut: 'B', init: 'pytorch', seed: config.seed });
}

/** The SGD recipe of `decompose train` (momentum 0.9, weight decay 5e-4 on all weights, cosine lr). */
function sgdOptions(config: Config, lr: number, epochs: number, checkpointDir: string, seed = config.seed) {
  return {
    epochs,
    batchSize: config.batch,
    evalBatchSize: 256,
    workers: config.workers,
    // Workers rebuild the model from its JSON, so they need the BasisConv2D class registered.
    workerOptions: { setupModules: ['@decompose/basis'], resolveFrom: new URL('.', import.meta.url) },
    seed,
    augment: true,
    schedule: { type: 'cosine', lr },
    optimizer: { momentum: 0.9, weightDecay: 5e-4, weightDecayScope: 'all' },
    checkpointDir,
    resume: true,
    onEpoch: (m: EpochMetrics) =>
      log(
        `  epoch ${m.epoch}/${m.epochs}: train loss ${m.train.loss.toFixed(3)} acc ${pct(m.train.accuracy)}, ` +
          `${m.train.seconds.toFixed(0)} s (${m.train.imagesPerSecond.toFixed(1)} img/s)`,
      ),
  } satisfies Partial<TrainOptions>;
}

interface Baseline {
  model: tfl.LayersModel;
  source: string;
  /** Wall-clock seconds of the baseline's training steps (per-epoch evaluation excluded). */
  trainSeconds: number;
  /** Wall-clock seconds of its epochs including their test evaluation. */
  epochSeconds: number;
  epochs: number;
  trainImages: number;
  /** Whether the calibration images were part of the baseline's training data. */
  sawCalibration: boolean;
}

const summarySeconds = (epochs: readonly EpochMetrics[]) => ({
  trainSeconds: epochs.reduce((s, e) => s + e.train.seconds, 0),
  epochSeconds: epochs.reduce((s, e) => s + e.seconds, 0),
});

async function loadBaseline(
  config: Config,
  work: WorkDir,
  split: { train: Cifar10Images; calibrationIndices: Uint32Array },
  /** The training images the split was drawn from. */
  source: Cifar10Images,
): Promise<Baseline> {
  const trainSplit = split.train;
  if (config.baselineDir !== null) {
    const summary = JSON.parse(await readFile(path.join(config.baselineDir, 'summary.json'), 'utf8')) as {
      epochs: EpochMetrics[];
      data: { train: number };
      holdOut?: unknown;
    };
    const model = await tfl.loadLayersModel(fileSystem(path.join(config.baselineDir, 'model')));
    return {
      model,
      source: config.baselineDir,
      ...summarySeconds(summary.epochs),
      epochs: summary.epochs.length,
      trainImages: summary.data.train,
      // A summary of another shape (or none) says nothing held out: every calibration image counts as seen.
      sawCalibration:
        calibrationSeenInTraining(
          source,
          holdOutSchema
            .nullable()
            .catch(null)
            .parse(summary.holdOut ?? null),
          split.calibrationIndices,
        ) > 0,
    };
  }
  const modelDir = work.file('baseline', 'model');
  const checkpointDir = work.file('baseline', 'checkpoints');
  const model = freshResNet(config);
  const done = await work.read<{ epochs: number }>('baseline/done');
  if (done === undefined) {
    log(`training the baseline: ${config.baselineEpochs} epochs on ${trainSplit.count} images`);
    await train({
      model,
      trainData: trainSplit,
      ...sgdOptions(config, BASELINE_LR, config.baselineEpochs, checkpointDir),
    });
    await model.save(fileSystem(modelDir));
    await work.write('baseline/done', { epochs: config.baselineEpochs });
  } else {
    model.dispose();
  }
  const metrics = (await readFile(path.join(checkpointDir, METRICS_FILE), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as EpochMetrics);
  return {
    model: done === undefined ? model : await tfl.loadLayersModel(fileSystem(modelDir)),
    source: `trained here (${work.file('baseline')})`,
    ...summarySeconds(metrics),
    epochs: metrics.length,
    trainImages: trainSplit.count,
    sawCalibration: false,
  };
}

/**
 * The scan: one `scanSensitivity` call on the calibration images for each set of ratios the strategy supports
 * (on ResNet-20, one call for all candidates); a layer is scanned only at the ratios it supports.
 */
async function runScan(
  baseline: tfl.LayersModel,
  candidates: readonly Candidate[],
  config: Config,
  calibration: Cifar10Images,
  work: WorkDir,
): Promise<SensitivityTable> {
  const clock = { mark: performance.now() };
  const cache = work.scanCache(clock);
  const groups = new Map<string, { ratios: number[]; layers: string[] }>();
  for (const candidate of candidates) {
    const ratios = config.ratios.filter((r) => candidate.costAt(r) !== null);
    if (ratios.length === 0) continue;
    const group = groups.get(ratios.join()) ?? { ratios, layers: [] };
    group.layers.push(candidate.layer);
    groups.set(ratios.join(), group);
  }
  const split = labelledImages(calibration);
  const layers: SensitivityTable['layers'] = [];
  const entries: ScanEntry[] = [];
  const keys: string[] = [];
  let baselineMetric: Metric | null = null;
  let done = 0;
  const total = [...groups.values()].reduce((n, g) => n + g.layers.length * g.ratios.length, 0);
  try {
    for (const group of groups.values()) {
      // An entry's seconds run from the previous entry's end, so the first one's include the baseline's evaluation.
      clock.mark = performance.now();
      const table = await scanSensitivity({
        model: baseline,
        strategy: basisStrategy,
        layers: group.layers,
        ratios: group.ratios,
        calibration: split,
        cache,
        seed: config.seed,
        onProgress: ({ entry, cached }) => {
          done++;
          if (!cached)
            log(
              `  scan ${done}/${total} ${entry.layer} @${entry.ratio}: calibration acc ${pct(entry.metric.accuracy)}`,
            );
        },
      });
      baselineMetric ??= table.baseline;
      layers.push(...table.layers);
      entries.push(...table.entries);
      keys.push(
        ...group.layers.flatMap((layer) => group.ratios.map((r) => scanEntryKey(basisStrategy, layer, r, 0))),
      );
    }
  } finally {
    split.images.dispose();
  }
  return {
    strategy: { name: basisStrategy.name, version: basisStrategy.version },
    baseline: baselineMetric ?? { accuracy: 0, loss: 0 },
    ratios: config.ratios,
    layers,
    entries,
    calibrationSize: calibration.count,
    fineTuneSteps: 0,
    seconds: work.scanSeconds(keys),
  };
}

interface Throughput {
  /** Images per second of forward+backward (gradient computation, no optimizer update), by process CPU time. */
  trainImgPerS: number;
  /** Images per second of inference (predict), by process CPU time. */
  evalImgPerS: number;
  /** The same by wall-clock time (inflated by waiting for a core on a shared machine). */
  trainImgPerSWall: number;
  evalImgPerSWall: number;
}

async function timeSteps(steps: number, step: () => Promise<void>): Promise<{ cpu: number; wall: number }> {
  await step();
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < steps; i++) {
    const wallStart = performance.now();
    const cpuStart = process.cpuUsage();
    await step();
    const used = process.cpuUsage(cpuStart);
    wall.push((performance.now() - wallStart) / 1000);
    cpu.push((used.user + used.system) / 1e6);
  }
  return { cpu: median(cpu), wall: median(wall) };
}

/**
 * Measured throughput of a model on one fixed batch. The timed gradient steps update the BatchNorm statistics,
 * so the model's weights are put back afterwards: the dense arm times the baseline itself, which every later
 * arm is rewritten from.
 */
async function throughput(model: tfl.LayersModel, data: Cifar10Images, config: Config): Promise<Throughput> {
  const weights = model.getWeights().map((w) => w.clone());
  try {
    return await timeModel(model, data, config);
  } finally {
    model.setWeights(weights);
    tf.dispose(weights);
  }
}

async function timeModel(model: tfl.LayersModel, data: Cifar10Images, config: Config): Promise<Throughput> {
  const stream = createBatchStream(data, { batchSize: config.timingBatch, shuffle: false });
  const batch = stream.epoch(0).next().value;
  if (!batch) throw new Error('No images to time.');
  const images = batch.images.slice();
  const labels = batch.labels.slice();
  const count = batch.count;
  const computer = await createGradientComputer({ model, workers: 0, numClasses: 10 });
  try {
    const training = await timeSteps(config.timingSteps, async () => {
      await computer.compute({ images, labels, count });
    });
    const input = tf.tensor4d(images, [count, 32, 32, 3]);
    const inference = await timeSteps(config.timingSteps, async () => {
      const out = model.predict(input) as tf.Tensor;
      await out.data();
      out.dispose();
    });
    input.dispose();
    return {
      trainImgPerS: count / training.cpu,
      evalImgPerS: count / inference.cpu,
      trainImgPerSWall: count / training.wall,
      evalImgPerSWall: count / inference.wall,
    };
  } finally {
    await computer.close();
  }
}

/** One fine-tune of an arm's rewritten model (or, from scratch, one training of its architecture). */
interface FineTuneRun {
  seed: number;
  testAcc: number;
  testLoss: number;
  seconds: number;
}

interface ArmResult {
  name: string;
  plan: PlanLayer[];
  candidateCost: PlanCost;
  /** Whole-model params and forward MACs per image (every layer with weights). */
  params: number;
  macs: number;
  /** Test accuracy of the rewritten model as the surgery left it, with the baseline's BatchNorm statistics. */
  testAccAfterSurgery: number;
  /** Test accuracy where the fine-tune starts: after the BatchNorm re-estimation, if one ran. */
  testAccBeforeFineTune: number;
  /** One per fine-tune seed; without a fine-tune, the rewritten model itself. */
  runs: FineTuneRun[];
  /** Mean test accuracy and loss of the runs. */
  testAcc: number;
  testLoss: number;
  /** Mean wall-clock seconds of a run's training. */
  fineTuneSeconds: number;
  throughput: Throughput;
}

interface ArmContext {
  baseline: tfl.LayersModel;
  candidates: Candidate[];
  config: Config;
  work: WorkDir;
}

interface ArmData {
  train: Cifar10Images;
  test: Cifar10Images;
  /** Augmented training images for `reestimateBatchNorm` after a surgery, or null to keep the baseline's statistics. */
  batchNormImages: tf.Tensor | null;
}

const mean = (values: readonly number[]) => values.reduce((s, v) => s + v, 0) / values.length;

async function runArm(
  name: string,
  plan: PlanLayer[],
  context: ArmContext,
  data: ArmData,
  fineTune = plan.length > 0,
): Promise<ArmResult> {
  const { baseline, candidates, config, work } = context;
  const cached = await work.read<ArmResult>(`arms/${name}`);
  if (cached !== undefined && JSON.stringify(cached.plan) !== JSON.stringify(plan)) {
    // Plans follow from the configuration and the scan, so only a changed selection rule gets here.
    throw new WorkDirMismatchError(work.dir, [`arm ${name} was run with another layer plan`]);
  }
  if (cached !== undefined) {
    log(`${name}: cached, test acc ${pct(cached.testAcc)}`);
    return cached;
  }
  const candidateCost = planCost(candidates, plan);
  log(
    `${name}: ${plan.length} layers (${plan.map((p) => `${p.layer}@${p.ratio}`).join(', ')}), ` +
      `candidate params −${pct(candidateCost.paramsReduction)}`,
  );
  const scratch = config.armTraining === 'scratch' && plan.length > 0;
  let model = baseline;
  if (plan.length > 0) {
    // From scratch the arm's layers are rewritten in an untrained network, else in the trained baseline.
    const source = scratch ? freshResNet(config) : baseline;
    model = applyStrategy(source, basisStrategy, {
      perLayerOptions: Object.fromEntries(plan.map((p) => [p.layer, { ratio: p.ratio }])),
      init: scratch ? 'scratch' : 'trained',
      seed: config.seed,
    }).model;
    if (source !== baseline) source.dispose();
  }
  try {
    const afterSurgery = await evaluate(model, data.test, 256);
    let start = afterSurgery;
    if (plan.length > 0 && !scratch && data.batchNormImages !== null) {
      reestimateBatchNorm(model, data.batchNormImages, { batchSize: config.batch });
      start = await evaluate(model, data.test, 256);
    }
    log(
      `  test acc ${scratch ? 'untrained' : 'after surgery'} ${pct(afterSurgery.accuracy)}` +
        (start === afterSurgery ? '' : `, ${pct(start.accuracy)} with BatchNorm statistics re-estimated`),
    );
    const tuning = fineTune && (scratch || config.fineTuneEpochs > 0);
    const runs: FineTuneRun[] = [];
    for (const seed of tuning ? (scratch ? [config.seed] : config.fineTuneSeeds) : []) {
      runs.push(await fineTuneRun(name, model, seed, scratch, context, data));
    }
    if (runs.length === 0) {
      runs.push({ seed: config.seed, testAcc: start.accuracy, testLoss: start.loss, seconds: 0 });
    }
    const totals = costTable(model, { strategies: [basisStrategy] }).total;
    const result: ArmResult = {
      name,
      plan,
      candidateCost,
      params: totals.params,
      macs: totals.forwardMacs,
      testAccAfterSurgery: afterSurgery.accuracy,
      testAccBeforeFineTune: start.accuracy,
      runs,
      testAcc: mean(runs.map((r) => r.testAcc)),
      testLoss: mean(runs.map((r) => r.testLoss)),
      fineTuneSeconds: mean(runs.map((r) => r.seconds)),
      throughput: await throughput(model, data.test, config),
    };
    log(`  test acc ${pct(result.testAcc)}${runs.length > 1 ? ` (mean of ${runs.length} seeds)` : ''}`);
    await work.write(`arms/${name}`, result);
    return result;
  } finally {
    if (model !== baseline) model.dispose();
  }
}

/** Trains a copy of `start` with `seed`: the arm's fine-tune, or from scratch the baseline's recipe. Cached. */
async function fineTuneRun(
  name: string,
  start: tfl.LayersModel,
  seed: number,
  scratch: boolean,
  { config, work }: ArmContext,
  data: ArmData,
): Promise<FineTuneRun> {
  const key = `arms/${name}/seed-${seed}`;
  const cached = await work.read<FineTuneRun>(key);
  if (cached !== undefined) return cached;
  const model = await copyModel(start);
  try {
    const checkpoints = work.file('arms', name, `checkpoints-seed-${seed}`);
    const started = performance.now();
    await train({
      model,
      trainData: data.train,
      ...(scratch
        ? sgdOptions(config, BASELINE_LR, config.baselineEpochs, checkpoints, seed)
        : sgdOptions(config, config.fineTuneLr, config.fineTuneEpochs, checkpoints, seed)),
    });
    const seconds = (performance.now() - started) / 1000;
    const after = await evaluate(model, data.test, 256);
    const run: FineTuneRun = { seed, testAcc: after.accuracy, testLoss: after.loss, seconds };
    log(`  seed ${seed}: test acc ${pct(run.testAcc)}`);
    await work.write(key, run);
    return run;
  } finally {
    model.dispose();
  }
}

/** An independent copy of a model (topology and weights), through an in-memory save. */
async function copyModel(model: tfl.LayersModel): Promise<tfl.LayersModel> {
  let saved: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (saved === null) throw new Error('Saving the model to memory produced nothing.');
  return tfl.loadLayersModel(tf.io.fromMemory(saved));
}

/**
 * Per-layer and greedy selections for the budget by one sensitivity metric: `accuracy` (calibration accuracy
 * drop) or `loss` (calibration loss increase, a finer signal than accuracy on a few hundred images, where many
 * drops tie at 0). Both selectors trim their answer back to the budget themselves. The budget counts every
 * candidate layer; a candidate the scan skipped (no supported ratio) is not in the table, so the table's
 * fraction is scaled to remove the same number of parameters.
 */
function selectFor(
  table: SensitivityTable,
  candidates: readonly Candidate[],
  reduction: number,
  metric: SensitivityMetric,
) {
  const scanned = table.layers.reduce((s, l) => s + l.cost.params, 0);
  const budget: Budget = {
    kind: 'reduction',
    target: 'params',
    reduction: Math.min(reduction * (planCost(candidates, []).denseParams / scanned), 1 - 1e-9),
  };
  const perLayer = selectPerLayer(table, budget, { metric });
  const greedy = selectGreedy(table, budget, { metric });
  const plan: PlanLayer[] = perLayer.choices.map((c) => ({ layer: c.layer, ratio: c.ratio }));
  return { perLayer, greedy, plan };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function meanAndSpread(values: number[]): { mean: number; std: number; min: number; max: number } {
  const average = mean(values);
  const variance = values.reduce((s, v) => s + (v - average) ** 2, 0) / Math.max(1, values.length - 1);
  return { mean: average, std: Math.sqrt(variance), min: Math.min(...values), max: Math.max(...values) };
}

function selectionSummary(selection: Selection) {
  return {
    method: selection.method,
    met: selection.met,
    metric: selection.metric,
    threshold: selection.threshold ?? null,
    untrimmed_reduction: selection.untrimmedReduction ?? null,
    estimatedDrop: selection.estimatedDrop,
    estimatedLossIncrease: selection.estimatedLossIncrease,
    reduction: selection.reduction,
    choices: selection.choices.map((c) => ({
      layer: c.layer,
      ratio: c.ratio,
      drop: c.drop,
      loss_increase: c.lossIncrease,
      params_saved: c.saving.params,
    })),
  };
}

function printRecords(records: Record<string, string | number>[]): void {
  const header = Object.keys(records[0] ?? {});
  printTable(
    header,
    records.map((r) => header.map((h) => String(r[h]))),
  );
}

async function main(): Promise<void> {
  const config = parseConfig(process.argv.slice(2).filter((a) => a !== '--'));
  if (config === null) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const engine: EngineInfo = await initEngine();
  log(`backend ${engine.backend} (${engine.threads} thread(s))`);
  const dataDir = findBundledSubset();
  const dataset = await readCifar10(dataDir);
  const fullTrain = firstImages(dataset.train, config.limitTrain);
  const test = firstImages(dataset.test, config.limitTest);
  const split = splitCalibration(fullTrain, { count: config.calibration, seed: config.seed });
  const { workDir: _w, out: _o, ...fingerprint } = config;
  const work = await WorkDir.open(config.workDir, fingerprint);

  const baseline = await loadBaseline(config, work, split, fullTrain);
  const candidates = candidateLayers(baseline.model, basisStrategy);
  log(
    `baseline: ${baseline.source}, ${baseline.epochs} epochs, ${baseline.trainSeconds.toFixed(0)} s of training; ` +
      `${candidates.length} candidate 3×3 convs, ${planCost(candidates, []).denseParams} params` +
      (baseline.sawCalibration
        ? `; it was trained on calibration images (train it with --hold-out ${config.calibration} --hold-out-seed ${config.seed} to avoid that)`
        : ''),
  );

  log(
    `scan: ${candidates.length} layers × ratios ${config.ratios.join(', ')} on ${split.calibration.count} images`,
  );
  const table = await runScan(baseline.model, candidates, config, split.calibration, work);
  await writeAtomically(work.file('scan-table.json'), `${JSON.stringify(table, null, 2)}\n`);
  const budget: Budget = { kind: 'reduction', target: 'params', reduction: config.reduction };
  const byAccuracy = selectFor(table, candidates, config.reduction, 'accuracy');
  const byLoss = selectFor(table, candidates, config.reduction, 'loss');
  const { perLayer, greedy, plan: selectedPlan } = byAccuracy;
  const uniform = uniformPlan(candidates, config.reduction);
  log(
    `scan: ${table.seconds.toFixed(0)} s (${pct(table.seconds / baseline.trainSeconds)} of the baseline's training); ` +
      `per-layer: threshold ${perLayer.threshold}, −${pct(perLayer.untrimmedReduction ?? perLayer.reduction.params)} params trimmed to ` +
      `${selectedPlan.length} layers, −${pct(planCost(candidates, selectedPlan).paramsReduction)}, estimated drop ${pct(perLayer.estimatedDrop)}; ` +
      `greedy: ${greedy.choices.length} layers, estimated drop ${pct(greedy.estimatedDrop)}; uniform ratio ${uniform.ratio}`,
  );

  const context: ArmContext = { baseline: baseline.model, candidates, config, work };
  const reestimating = config.armTraining === 'fine-tune' && config.bnImages > 0;
  const data: ArmData = {
    train: split.train,
    test,
    batchNormImages: reestimating ? augmentedImages(split.train, config.bnImages, config.seed) : null,
  };
  const dense = await runArm('dense', [], context, data);
  const selected = await runArm('selected', selectedPlan, context, data);
  const allLayers = await runArm('all_layers', uniform.plan, context, data);
  const draws: ArmResult[] = [];
  for (let i = 0; i < config.randomDraws; i++) {
    const plan = randomPlan(candidates, config.ratios, config.reduction, config.seed * 1000 + i + 1);
    draws.push(await runArm(`random-${i}`, plan, context, data));
  }
  // Fine-tune mode only: from scratch the dense arm is the baseline itself, trained with the same recipe, and
  // each extra arm costs a whole training.
  const fineTuning = config.armTraining === 'fine-tune';
  const selectedByLoss = fineTuning ? await runArm('selected_loss', byLoss.plan, context, data) : null;
  // The dense model with the same fine-tune: what the extra training alone is worth (the reference to beat).
  const denseFineTuned =
    fineTuning && config.fineTuneEpochs > 0
      ? await runArm('dense_fine_tuned', [], context, data, true)
      : null;

  const scanSeconds = table.seconds;
  const common = {
    scan_seconds: scanSeconds,
    baseline_train_seconds: baseline.trainSeconds,
    scan_to_baseline_ratio: scanSeconds / baseline.trainSeconds,
  };
  const record = (arm: string, r: ArmResult) => ({
    arm,
    test_acc: r.testAcc,
    ...(r.runs.length > 1 ? { test_acc_std: meanAndSpread(r.runs.map((run) => run.testAcc)).std } : {}),
    test_acc_runs: r.runs.map((run) => ({ seed: run.seed, test_acc: run.testAcc })),
    test_acc_after_surgery: r.testAccAfterSurgery,
    test_acc_before_fine_tune: r.testAccBeforeFineTune,
    params: r.params,
    macs: r.macs,
    candidate_params: r.candidateCost.params,
    candidate_params_reduction: r.candidateCost.paramsReduction,
    candidate_macs_reduction: r.candidateCost.macsReduction,
    train_img_per_s: r.throughput.trainImgPerS,
    eval_img_per_s: r.throughput.evalImgPerS,
    train_img_per_s_wall: r.throughput.trainImgPerSWall,
    eval_img_per_s_wall: r.throughput.evalImgPerSWall,
    fine_tune_seconds: r.fineTuneSeconds,
    layers: r.plan,
    ...common,
  });
  data.batchNormImages?.dispose();
  const drawMean = (f: (r: ArmResult) => number) => mean(draws.map(f));
  const accuracy = meanAndSpread(draws.map((d) => d.testAcc));
  const records = [
    record('selected', selected),
    { ...record('all_layers', allLayers), ratio: uniform.ratio },
    ...(selectedByLoss === null ? [] : [record('selected_loss', selectedByLoss)]),
    {
      arm: 'random',
      test_acc: accuracy.mean,
      test_acc_std: accuracy.std,
      test_acc_min: accuracy.min,
      test_acc_max: accuracy.max,
      test_acc_after_surgery: drawMean((d) => d.testAccAfterSurgery),
      test_acc_before_fine_tune: drawMean((d) => d.testAccBeforeFineTune),
      params: drawMean((d) => d.params),
      macs: drawMean((d) => d.macs),
      candidate_params: drawMean((d) => d.candidateCost.params),
      candidate_params_reduction: drawMean((d) => d.candidateCost.paramsReduction),
      candidate_macs_reduction: drawMean((d) => d.candidateCost.macsReduction),
      train_img_per_s: drawMean((d) => d.throughput.trainImgPerS),
      eval_img_per_s: drawMean((d) => d.throughput.evalImgPerS),
      train_img_per_s_wall: drawMean((d) => d.throughput.trainImgPerSWall),
      eval_img_per_s_wall: drawMean((d) => d.throughput.evalImgPerSWall),
      fine_tune_seconds: drawMean((d) => d.fineTuneSeconds),
      ...common,
      draws: draws.map((d, i) => record(`random-${i}`, d)),
    },
  ];
  const result = {
    date: new Date().toISOString(),
    engine,
    config: {
      ...config,
      data: {
        dir: dataDir,
        train: split.train.count,
        calibration: split.calibration.count,
        test: test.count,
      },
      model: 'resnet20, shortcut B, PyTorch init',
      strategy: `${basisStrategy.name}@${basisStrategy.version}, options { ratio }, m = round(ratio·C_out), weights from the trained layer (pivoted QR + least squares)`,
      budget,
      baseline: {
        source: baseline.source,
        epochs: baseline.epochs,
        train_images: baseline.trainImages,
        train_seconds: baseline.trainSeconds,
        epoch_seconds_with_eval: baseline.epochSeconds,
        saw_calibration_images: baseline.sawCalibration,
      },
    },
    notes: [
      `Counted params: kernel weights of the ${candidates.length} candidate layers = every trainable 3×3 conv (stem included; 1×1 shortcut projections, batch norm and the classifier excluded), ${planCost(candidates, []).denseParams} dense. Every arm removes ≥ ${config.reduction} of them (achieved: candidate_params_reduction). params/macs are whole-model totals (costTable; batch-norm statistics included in params).`,
      "selected_loss: the same selection with metric 'loss' (calibration loss increase in place of the accuracy drop), to see whether the coarse accuracy signal of a small calibration split limits the selection.",
      'selected = selectPerLayer for the budget: the smallest accepted per-layer drop that meets it, then trimmed back to it inside the selector (layers move to milder ratios or back to dense, those giving back the most drop per saved parameter first, while the budget is still met), because at that drop every layer whose curve stays under it takes its most compressive ratio and the budget can be overshot by far. The reduction before trimming (untrimmed_reduction) and the greedy selection are reported under selection.',
      'Scan: each candidate layer alone decomposed at each ratio the strategy supports there (one that would not save weights is skipped), no fine-tune, accuracy/loss on the calibration split. scan_seconds = wall-clock of the dense calibration evaluation + every entry (surgery + evaluation), summed over resumed runs from the cache.',
      "baseline_train_seconds = wall-clock seconds of the baseline's training steps (sum of per-epoch train seconds, per-epoch test evaluation excluded), from its summary.json or metrics.jsonl; scan_to_baseline_ratio divides the two. Both are wall-clock on this shared 2-core machine, measured at different times, so the load differs.",
      'Fine-tune: the same for every arm — SGD momentum 0.9, weight decay 5e-4, cosine lr from fine_tune_lr, batch, epochs — on the training split without the calibration images, once per fine-tune seed from the same rewritten model; test_acc is the mean over seeds (test_acc_runs), test_acc_std their spread. For random, test_acc is the mean over draws and test_acc_std the spread of the draw means.',
      reestimating
        ? `BatchNorm re-estimation: after the surgery, before the fine-tune, every rewritten model's BatchNorm statistics are replaced (core's reestimateBatchNorm) by the average over ${config.bnImages} augmented training images in batches of ${config.batch}. test_acc_after_surgery is the rewritten model with the baseline's statistics, test_acc_before_fine_tune after the re-estimation.`
        : 'No BatchNorm re-estimation (--bn-images 0 or from scratch): test_acc_before_fine_tune = test_acc_after_surgery.',
      'train_img_per_s: gradient computation (forward+backward, no optimizer update) on one fixed batch of timing_batch test images; eval_img_per_s: predict on the same batch; median of timing_steps steps after a warm-up, by process CPU time (single-threaded wasm, so CPU time ≈ compute time on a loaded machine); *_wall are the wall-clock equivalents.',
      !fineTuning
        ? `Arms trained from scratch (--arm-training scratch): each arm's architecture (basis convolutions at its layers and ratios, everything else as the baseline) is initialised afresh (He-normal basis filters, LeCun-normal coefficients; the rest PyTorch init, seed ${config.seed}) and trained with the baseline's recipe (lr 0.1 cosine, ${config.baselineEpochs} epochs); the dense reference is the baseline itself. test_acc_before_fine_tune is then the untrained network's; fine_tune_seconds is the whole training.`
        : denseFineTuned === null
          ? 'No fine-tune (--fine-tune-epochs 0): every arm is tested as rewritten (after the BatchNorm re-estimation, if any).'
          : `dense_fine_tuned: the dense baseline given the same fine-tune as the arms (test acc ${pct(denseFineTuned.testAcc)}): the extra training alone, the reference an arm has to match to "not degrade the final model".`,
      `dense reference: test acc ${pct(dense.testAcc)}, train ${dense.throughput.trainImgPerS.toFixed(1)} img/s, eval ${dense.throughput.evalImgPerS.toFixed(1)} img/s (CPU time).`,
    ],
    dense: record('dense', dense),
    dense_fine_tuned: denseFineTuned === null ? null : record('dense_fine_tuned', denseFineTuned),
    selection: {
      calibration: table.baseline,
      per_layer: selectionSummary(perLayer),
      by_loss: {
        per_layer: selectionSummary(byLoss.perLayer),
        greedy: selectionSummary(byLoss.greedy),
      },
      greedy: selectionSummary(greedy),
      uniform_ratio: uniform.ratio,
      scan: table.entries.map((e) => ({
        layer: e.layer,
        ratio: e.ratio,
        accuracy: e.metric.accuracy,
        loss: e.metric.loss,
        drop: table.baseline.accuracy - e.metric.accuracy,
        params: e.cost.params,
        relative_error: e.info?.relativeError ?? null,
      })),
    },
    records,
  };
  await writeAtomically(config.out, `${JSON.stringify(result, null, 2)}\n`);
  printRecords(
    [
      record('dense', dense),
      ...(denseFineTuned === null ? [] : [record('dense_fine_tuned', denseFineTuned)]),
      ...records,
    ].map((r) => ({
      arm: r.arm,
      'test acc':
        pct(r.test_acc) +
        ('test_acc_std' in r && r.test_acc_std !== undefined ? ` ±${(100 * r.test_acc_std).toFixed(1)}` : ''),
      surgery: pct(r.test_acc_after_surgery),
      'before FT': pct(r.test_acc_before_fine_tune),
      params: Math.round(r.params),
      'MACs (M)': (r.macs / 1e6).toFixed(1),
      'cand. params −': pct(r.candidate_params_reduction),
      'train img/s': r.train_img_per_s.toFixed(1),
      'eval img/s': r.eval_img_per_s.toFixed(1),
      'scan s': r.scan_seconds.toFixed(0),
      'baseline s': r.baseline_train_seconds.toFixed(0),
    })),
  );
  process.stdout.write(
    `\nscan / baseline training: ${pct(common.scan_to_baseline_ratio)} (target ≤ 10%)\n` +
      `per-layer selection: ${selectedPlan.map((c) => `${c.layer}@${c.ratio}`).join(', ')}\n` +
      `selected by loss:    ${byLoss.plan.map((c) => `${c.layer}@${c.ratio}`).join(', ')}\n` +
      `greedy selection:    ${greedy.choices.map((c) => `${c.layer}@${c.ratio}`).join(', ')}\nwrote ${config.out}\n`,
  );
}

try {
  await main();
} catch (error) {
  // Bad flags and a foreign work directory are the user's to fix: say what, without a stack trace.
  if (!(error instanceof BenchError)) throw error;
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exitCode = 2;
}
