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
 * A thin driver of the pipeline (`@decompose/pipeline`): the baseline is a training-run unit, the scan
 * `scanOnExecutor` (scan-layer units on worker threads), each (arm, seed) an arm unit on a local executor.
 * Writes bench/results/selection.json and prints a table. Everything finished is cached in the work directory,
 * so a killed run continues where it stopped. Run `node bench/dist/selection.js --help` for the flags.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basisStrategy } from '@decompose/basis';
import { type Cifar10Images, findBundledSubset, readCifar10 } from '@decompose/cifar10';
import { type EngineInfo, initEngine } from '@decompose/engine';
import { type Executor, localExecutor, type UnitProgress } from '@decompose/jobs';
import {
  type ArmUnitResult,
  armUnit,
  BUILT_IN_STRATEGIES,
  type CalibrationImages,
  calibrationSeenInTraining,
  calibrationSplit,
  type HoldOut,
  loadModel,
  measureModel,
  PIPELINE_CATALOGUE,
  PipelineError,
  packImageSet,
  packModel,
  type SgdSettings,
  saveModel,
  scanLayers,
  scanOnExecutor,
  trainingRecordOf,
  trainingRunUnit,
  trainOnExecutor,
} from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import {
  type Budget,
  type Selection,
  type SensitivityMetric,
  type SensitivityTable,
  selectGreedy,
  selectPerLayer,
} from '@decompose/sensitivity';
import type { EpochMetrics } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { firstImages } from './calibration-images.js';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { printTable, writeAtomically } from './output.js';
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
  --fine-tune-seeds LIST  fine-tune each arm once per seed (its BatchNorm re-estimation drawn with that
                          seed), and report the mean and spread (default: --seed; fine-tune mode only)
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
  --workers N             gradient workers of every training (default 0: the thread it runs in)
  --scan-threads N        worker threads of the scan, one layer per unit (default: one per core; 0 or 1:
                          this thread)
  --arm-threads N         worker threads the (arm, seed) runs share (default 0: one after another in this
                          thread, so the timed throughput steps do not share the cores with a training)
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
  scanThreads: number;
  armThreads: number;
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
      'scan-threads': { type: 'string' },
      'arm-threads': { type: 'string', default: '0' },
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
    scanThreads: integer('scan-threads', values['scan-threads'] ?? String(availableParallelism()), 0),
    armThreads: integer('arm-threads', values['arm-threads'], 0),
    timingBatch: integer('timing-batch', values['timing-batch'], 1),
    timingSteps: integer('timing-steps', values['timing-steps'], 1),
    workDir: path.resolve(values['work-dir'] ?? path.join(results, 'selection-work')),
    out: path.resolve(values.out ?? path.join(results, 'selection.json')),
  };
}

const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);

/** Peak learning rate of the baseline recipe (and of arms trained from scratch with it). */
const BASELINE_LR = 0.1;

/**
 * The shape of the work directory's files, kept with its configuration so that a directory an earlier version
 * of this script wrote is refused rather than misread (2: the pipeline's scan cache, one file per (arm, seed)).
 */
const WORK_FORMAT = 2;

/** The baseline network (and, from scratch, every arm's before its surgery): ResNet-20, option-B shortcuts, PyTorch init. */
const architecture = (config: Config) =>
  ({ arch: 'resnet20', shortcut: 'B', init: 'pytorch', seed: config.seed }) as const;

/** The SGD recipe of `decompose train` (momentum 0.9, weight decay 5e-4 on all weights, cosine lr). */
function sgdSettings(config: Config, lr: number, seed: number): SgdSettings {
  return {
    batch: config.batch,
    lr,
    momentum: 0.9,
    nesterov: false,
    weightDecay: 5e-4,
    decayOn: 'all',
    schedule: 'cosine',
    gamma: 0.1, // of step schedules only
    warmupEpochs: 0,
    labelSmoothing: 0,
    augment: true,
    workers: config.workers,
    seed,
  };
}

/** Logs the epochs of a training unit and the test accuracies an arm unit reports, as they arrive. */
function logProgress(label: string): (progress: UnitProgress) => void {
  return (progress) => {
    if (typeof progress === 'number') return;
    if (progress.phase === 'epoch') {
      const m = progress.metrics as unknown as EpochMetrics;
      log(
        `  ${label} epoch ${m.epoch}/${m.epochs}: train loss ${m.train.loss.toFixed(3)} acc ${pct(m.train.accuracy)}, ` +
          `${m.train.seconds.toFixed(0)} s (${m.train.imagesPerSecond.toFixed(1)} img/s)` +
          (m.eval === null ? '' : `; test acc ${pct(m.eval.accuracy)}`),
      );
    } else if (progress.phase === 'surgery-evaluated') {
      log(`  ${label}: test acc after surgery ${pct(progress.accuracy as number)}`);
    } else if (progress.phase === 'batch-norm') {
      log(`  ${label}: test acc ${pct(progress.accuracy as number)} with BatchNorm statistics re-estimated`);
    }
  };
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

/** What the training of a baseline here leaves in the work directory beside the model. */
interface TrainedHere {
  epochs: EpochMetrics[];
  holdOut: HoldOut | null;
  trainImages: number;
}

const trainSeconds = (epochs: readonly EpochMetrics[]) => epochs.reduce((s, e) => s + e.train.seconds, 0);
const summarySeconds = (epochs: readonly EpochMetrics[]) => ({
  trainSeconds: trainSeconds(epochs),
  epochSeconds: epochs.reduce((s, e) => s + e.seconds, 0),
});

/**
 * The baseline: `--baseline-dir`, or trained here as a training-run unit (`trainOnExecutor`) on the training
 * images less the calibration split (its hold-out), resumably in the work directory.
 */
async function loadBaseline(
  config: Config,
  work: WorkDir,
  /** The training images the calibration split was drawn from, and the test images. */
  data: { train: Cifar10Images; test: Cifar10Images },
  split: CalibrationImages,
  executor: Executor,
): Promise<Baseline> {
  const saw = (holdOut: HoldOut | null) => calibrationSeenInTraining(data.train, holdOut, split.indices) > 0;
  if (config.baselineDir !== null) {
    const summary = JSON.parse(await readFile(path.join(config.baselineDir, 'summary.json'), 'utf8')) as {
      epochs: EpochMetrics[];
      data: { train: number };
      holdOut?: unknown;
    };
    return {
      model: await loadModel(path.join(config.baselineDir, 'model')),
      source: config.baselineDir,
      ...summarySeconds(summary.epochs),
      epochs: summary.epochs.length,
      trainImages: summary.data.train,
      sawCalibration: saw(trainingRecordOf(summary).holdOut),
    };
  }
  const modelDir = work.file('baseline', 'model');
  let trained = await work.read<TrainedHere>('baseline/done');
  let model: tfl.LayersModel;
  if (trained === undefined) {
    log(
      `training the baseline: ${config.baselineEpochs} epochs on ${split.rest.count} images ` +
        `(${split.calibration.count} held out for the scan)`,
    );
    const run = await trainOnExecutor(
      executor,
      {
        architecture: architecture(config),
        data,
        recipe: { ...sgdSettings(config, BASELINE_LR, config.seed), epochs: config.baselineEpochs },
        holdOut: { count: config.calibration, seed: config.seed },
        checkpointDir: work.file('baseline', 'checkpoints'),
      },
      { what: 'the baseline training', onProgress: logProgress('baseline') },
    );
    model = run.model;
    await saveModel(model, modelDir);
    trained = { epochs: run.epochs, holdOut: run.holdOut, trainImages: run.trainImages };
    await work.write('baseline/done', trained);
  } else {
    model = await loadModel(modelDir);
  }
  return {
    model,
    source: `trained here (${work.file('baseline')})`,
    ...summarySeconds(trained.epochs),
    epochs: trained.epochs.length,
    trainImages: trained.trainImages,
    sawCalibration: saw(trained.holdOut),
  };
}

/**
 * The scan, through the pipeline (`scanOnExecutor`: one `scan-layer` unit per layer, on worker threads): every
 * candidate layer alone as a basis convolution at each ratio the strategy supports there, on the calibration
 * images, cached in the work directory's `scan.jsonl`. Its `seconds` are the scan's wall-clock seconds summed
 * over the runs that computed entries.
 */
async function runScan(
  baseline: tfl.LayersModel,
  candidates: readonly Candidate[],
  config: Config,
  calibration: Cifar10Images,
  work: WorkDir,
): Promise<SensitivityTable> {
  const layers = candidates.map((c) => c.layer);
  const field = 'the candidate layers';
  const scanned = scanLayers(baseline, basisStrategy, config.ratios, {}, layers, field, 'supported').length;
  const threads = config.scanThreads >= 2 ? Math.min(config.scanThreads, scanned) : 0;
  const executor = await localExecutor(threads > 0 ? { threads, catalogue: PIPELINE_CATALOGUE } : {});
  const time = await work.scanTime();
  const started = performance.now();
  let computed = 0;
  try {
    const table = await scanOnExecutor(
      executor,
      {
        model: baseline,
        strategy: basisStrategy,
        strategySpecifier: basisStrategy.name,
        layers,
        layersField: field,
        ratios: config.ratios,
        layerRatios: 'supported',
        calibration,
        seed: config.seed,
        cacheFile: work.file('scan.jsonl'),
      },
      {
        onStart: ({ total, cached }) =>
          log(
            `scan: ${scanned} layers × ratios ${config.ratios.join(', ')} (${total} entries) on ${calibration.count} images, ` +
              `${threads > 0 ? `${threads} worker threads` : 'this thread'}` +
              (cached > 0 ? ` (${cached} entries cached)` : ''),
          ),
        onProgress: ({ done, total, entry, cached }) => {
          if (cached) return;
          computed++;
          log(
            `  scan ${done}/${total} ${entry.layer} @${entry.ratio}: calibration acc ${pct(entry.metric.accuracy)}`,
          );
          // A failed write surfaces at the last record, awaited below.
          time.record((performance.now() - started) / 1000).catch(() => undefined);
        },
      },
    );
    if (computed > 0) await time.record(table.seconds);
    return { ...table, seconds: time.earlier + (computed > 0 ? table.seconds : 0) };
  } finally {
    await executor.close();
  }
}

/** Measured throughput of a model (the pipeline's `measureModel`, wall-clock). */
interface Throughput {
  /** Images per second of forward+backward (gradient computation, no optimizer update). */
  trainImgPerS: number;
  /** Images per second of inference, BatchNorms folded into the convolutions. */
  evalImgPerS: number;
}

/** One run of an arm (one seed), as its unit reported it; kept in the work directory. */
interface ArmRun {
  plan: PlanLayer[];
  seed: number;
  /** Test figures after the fine-tune (or the training from scratch); without one, as tested before it. */
  testAcc: number;
  testLoss: number;
  /** Test accuracy of the rewritten model as the surgery left it, with the baseline's BatchNorm statistics. */
  testAccAfterSurgery: number;
  /** Test accuracy where the fine-tune starts: after the BatchNorm re-estimation, if one ran. */
  testAccBeforeFineTune: number;
  /** Wall-clock seconds of the fine-tune's training steps (per-epoch test evaluation excluded); 0 without one. */
  fineTuneSeconds: number;
  /** Whole-model params and forward MACs per image (every layer with weights). */
  params: number;
  macs: number;
  /** Measured in the arm's first run (null in the others: the architecture is the same). */
  throughput: Throughput | null;
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
  params: number;
  macs: number;
  /** Means over the runs (see {@link ArmRun}). */
  testAccAfterSurgery: number;
  testAccBeforeFineTune: number;
  /** One per fine-tune seed; without a fine-tune, the rewritten model itself. */
  runs: FineTuneRun[];
  /** Mean test accuracy and loss of the runs. */
  testAcc: number;
  testLoss: number;
  /** Mean seconds of a run's training. */
  fineTuneSeconds: number;
  throughput: Throughput;
}

/**
 * An arm: its layer plan, and what its runs are — `decomposed`: an `arm` unit per seed (surgery, BatchNorm
 * re-estimation, fine-tune or training from scratch, measurement); `dense`: the baseline measured as it is;
 * `dense-fine-tuned`: a `training-run` unit per seed that fine-tunes the baseline as the arms are.
 */
interface ArmSpec {
  name: string;
  plan: PlanLayer[];
  kind: 'decomposed' | 'dense' | 'dense-fine-tuned';
  seeds: number[];
}

/** Everything the arms share. */
interface ArmContext {
  config: Config;
  candidates: Candidate[];
  work: WorkDir;
  executor: Executor;
  baseline: tfl.LayersModel;
  /** The training images less the calibration split, and the test images. */
  data: { train: Cifar10Images; test: Cifar10Images };
}

const mean = (values: readonly number[]) => values.reduce((s, v) => s + v, 0) / values.length;

/** The arm's run of one seed from its arm unit's result. */
function armRun(plan: PlanLayer[], seed: number, done: ArmUnitResult): ArmRun {
  const { surgery, measured } = done;
  if (surgery === null) throw new Error('An arm unit with data came back without its test figures.');
  const start = done.batchNorm ?? surgery;
  const final = done.fineTuned ?? measured ?? start;
  return {
    plan,
    seed,
    testAcc: final.accuracy,
    testLoss: final.loss,
    testAccAfterSurgery: surgery.accuracy,
    testAccBeforeFineTune: start.accuracy,
    fineTuneSeconds: trainSeconds(done.fineTune?.epochs ?? []),
    params: done.cost.params,
    macs: done.cost.forwardMacs,
    throughput:
      measured === null
        ? null
        : { trainImgPerS: measured.trainImagesPerSecond, evalImgPerS: measured.evalImagesPerSecond },
  };
}

/**
 * Runs every (arm, seed) not finished in the work directory: the dense measurement here, the others as units on
 * the executor (the decomposed arms' `arm` units, then the dense fine-tunes' `training-run` units), each stored
 * as it finishes; returns each arm's result.
 */
async function runArms(specs: readonly ArmSpec[], ctx: ArmContext): Promise<Map<string, ArmResult>> {
  const { config, work, executor, data } = ctx;
  const runs = new Map<string, ArmRun>();
  const runKey = (name: string, seed: number) => `arms/${name}/seed-${seed}`;
  for (const spec of specs) {
    for (const seed of spec.seeds) {
      const cached = await work.read<ArmRun>(runKey(spec.name, seed));
      if (cached === undefined) continue;
      if (JSON.stringify(cached.plan) !== JSON.stringify(spec.plan)) {
        // Plans follow from the configuration and the scan, so only a changed selection rule gets here.
        throw new WorkDirMismatchError(work.dir, [`arm ${spec.name} was run with another layer plan`]);
      }
      runs.set(runKey(spec.name, seed), cached);
    }
  }
  const label = ({ spec, seed }: { spec: ArmSpec; seed: number }) =>
    spec.seeds.length > 1 ? `${spec.name} seed ${seed}` : spec.name;
  const store = async (spec: ArmSpec, run: ArmRun) => {
    runs.set(runKey(spec.name, run.seed), run);
    await work.write(runKey(spec.name, run.seed), run);
    log(`${label({ spec, seed: run.seed })}: test acc ${pct(run.testAcc)}`);
  };
  const pending = specs.flatMap((spec) =>
    spec.seeds.filter((seed) => !runs.has(runKey(spec.name, seed))).map((seed) => ({ spec, seed })),
  );
  for (const spec of specs) {
    const cost = planCost(ctx.candidates, spec.plan);
    const todo = pending.filter((p) => p.spec === spec).length;
    log(
      `${spec.name}: ${spec.plan.length} layers (${spec.plan.map((p) => `${p.layer}@${p.ratio}`).join(', ')}), ` +
        `candidate params −${pct(cost.paramsReduction)}; ${todo === 0 ? 'cached' : `${todo} of ${spec.seeds.length} run(s) to do`}`,
    );
  }

  const measure = { batch: config.timingBatch, steps: config.timingSteps };
  for (const { spec, seed } of pending.filter((p) => p.spec.kind === 'dense')) {
    const m = await measureModel(ctx.baseline, data.test, {
      evalBatch: config.batch,
      ...measure,
      strategies: BUILT_IN_STRATEGIES,
    });
    await store(spec, {
      plan: spec.plan,
      seed,
      testAcc: m.accuracy,
      testLoss: m.loss,
      testAccAfterSurgery: m.accuracy,
      testAccBeforeFineTune: m.accuracy,
      fineTuneSeconds: 0,
      params: m.params,
      macs: m.forwardMacs,
      throughput: { trainImgPerS: m.trainImagesPerSecond, evalImgPerS: m.evalImagesPerSecond },
    });
  }

  const scratch = config.armTraining === 'scratch';
  const decomposed = pending.filter((p) => p.spec.kind === 'decomposed');
  const fineTunedDense = pending.filter((p) => p.spec.kind === 'dense-fine-tuned');
  if (decomposed.length === 0 && fineTunedDense.length === 0) return results();
  const fresh = scratch ? createCifarResNet(architecture(config)) : null;
  const blobs = {
    baseline: await executor.blobs.put(await packModel(ctx.baseline)),
    // From scratch the arms' layers are rewritten in the untrained network.
    fresh: fresh === null ? null : await executor.blobs.put(await packModel(fresh)),
    train: await executor.blobs.put(packImageSet(data.train)),
    test: await executor.blobs.put(packImageSet(data.test)),
  };
  fresh?.dispose();
  const images = { train: blobs.train, test: blobs.test };
  const checkpoints = (name: string, seed: number) => work.file('arms', name, `checkpoints-seed-${seed}`);
  const failures: string[] = [];
  const finishing: Promise<void>[] = [];
  try {
    await executor.run(
      decomposed.map(({ spec, seed }) =>
        armUnit.unit({
          baseline: blobs.fresh ?? blobs.baseline,
          strategy: basisStrategy.name,
          perLayerOptions: Object.fromEntries(spec.plan.map((p) => [p.layer, { ratio: p.ratio }])),
          init: scratch ? 'scratch' : 'trained',
          seed: config.seed,
          recipe: scratch
            ? { ...sgdSettings(config, BASELINE_LR, seed), epochs: config.baselineEpochs, bnImages: 0 }
            : {
                ...sgdSettings(config, config.fineTuneLr, seed),
                epochs: config.fineTuneEpochs,
                bnImages: config.bnImages,
              },
          data: images,
          measure: seed === spec.seeds[0] ? measure : null,
          checkpointDir: checkpoints(spec.name, seed),
        }),
      ),
      {
        onProgress: (i, progress) => logProgress(label(decomposed[i]!))(progress),
        onResult: (i, outcome) => {
          const { spec, seed } = decomposed[i]!;
          if (!outcome.ok) {
            failures.push(`${label(decomposed[i]!)}: ${outcome.error.name}: ${outcome.error.message}`);
            return;
          }
          finishing.push(
            store(spec, armRun(spec.plan, seed, outcome.result)).then(() =>
              executor.blobs.delete(outcome.result.model),
            ),
          );
        },
      },
    );
    // The dense fine-tunes share the dense run's figures before the fine-tune (the same model, no surgery).
    const denseSpec = specs.find((s) => s.kind === 'dense');
    const dense = denseSpec && runs.get(runKey(denseSpec.name, denseSpec.seeds[0]!));
    await executor.run(
      fineTunedDense.map(({ spec, seed }) =>
        trainingRunUnit.unit({
          architecture: null,
          model: blobs.baseline,
          data: images,
          recipe: { ...sgdSettings(config, config.fineTuneLr, seed), epochs: config.fineTuneEpochs },
          holdOut: null,
          checkpointDir: checkpoints(spec.name, seed),
        }),
      ),
      {
        onProgress: (i, progress) => logProgress(label(fineTunedDense[i]!))(progress),
        onResult: (i, outcome) => {
          const { spec, seed } = fineTunedDense[i]!;
          const test = outcome.ok ? outcome.result.epochs.at(-1)?.eval : undefined;
          if (!outcome.ok || test === undefined || test === null || dense === undefined) {
            const why = outcome.ok
              ? 'no test evaluation or dense run'
              : `${outcome.error.name}: ${outcome.error.message}`;
            failures.push(`${label(fineTunedDense[i]!)}: ${why}`);
            return;
          }
          finishing.push(
            store(spec, {
              ...dense,
              seed,
              testAcc: test.accuracy,
              testLoss: test.loss,
              fineTuneSeconds: trainSeconds(outcome.result.epochs),
              throughput: seed === spec.seeds[0] ? dense.throughput : null,
            }).then(() => executor.blobs.delete(outcome.result.model)),
          );
        },
      },
    );
  } finally {
    await Promise.allSettled(finishing);
    await Promise.all(
      Object.values(blobs)
        .filter((id): id is string => id !== null)
        .map((id) => executor.blobs.delete(id)),
    );
  }
  await Promise.all(finishing);
  if (failures.length > 0)
    throw new Error(`Arm runs failed (the others are stored):\n${failures.join('\n')}`);
  return results();

  function results(): Map<string, ArmResult> {
    return new Map(
      specs.map((spec) => {
        const armRuns = spec.seeds.map((seed) => runs.get(runKey(spec.name, seed))!);
        const throughput = armRuns[0]?.throughput;
        if (armRuns[0] === undefined || throughput === undefined || throughput === null) {
          throw new Error(`Arm ${spec.name} has no measured first run.`);
        }
        return [
          spec.name,
          {
            name: spec.name,
            plan: spec.plan,
            candidateCost: planCost(ctx.candidates, spec.plan),
            params: armRuns[0].params,
            macs: armRuns[0].macs,
            testAccAfterSurgery: mean(armRuns.map((r) => r.testAccAfterSurgery)),
            testAccBeforeFineTune: mean(armRuns.map((r) => r.testAccBeforeFineTune)),
            runs: armRuns.map((r) => ({
              seed: r.seed,
              testAcc: r.testAcc,
              testLoss: r.testLoss,
              seconds: r.fineTuneSeconds,
            })),
            testAcc: mean(armRuns.map((r) => r.testAcc)),
            testLoss: mean(armRuns.map((r) => r.testLoss)),
            fineTuneSeconds: mean(armRuns.map((r) => r.fineTuneSeconds)),
            throughput,
          },
        ];
      }),
    );
  }
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
  const split = calibrationSplit(fullTrain, config.calibration, config.seed, '--calibration');
  // Where the units run does not change their numbers, so a resumed run may use other thread counts.
  const { workDir: _w, out: _o, scanThreads: _s, armThreads: _a, ...settings } = config;
  const work = await WorkDir.open(config.workDir, { ...settings, workFormat: WORK_FORMAT });
  const threads = config.armThreads >= 2 ? config.armThreads : 0;
  const executor = await localExecutor(threads > 0 ? { threads, catalogue: PIPELINE_CATALOGUE } : {});
  try {
    await runBenchmark(config, work, executor, { dir: dataDir, train: fullTrain, test, split }, engine);
  } finally {
    await executor.close();
  }
}

/** The baseline, the scan, the selections and the arms; writes the result and prints the table. */
async function runBenchmark(
  config: Config,
  work: WorkDir,
  executor: Executor,
  data: { dir: string; train: Cifar10Images; test: Cifar10Images; split: CalibrationImages },
  engine: EngineInfo,
): Promise<void> {
  const { split, test } = data;
  const baseline = await loadBaseline(config, work, { train: data.train, test }, split, executor);
  const candidates = candidateLayers(baseline.model, basisStrategy);
  log(
    `baseline: ${baseline.source}, ${baseline.epochs} epochs, ${baseline.trainSeconds.toFixed(0)} s of training; ` +
      `${candidates.length} candidate 3×3 convs, ${planCost(candidates, []).denseParams} params` +
      (baseline.sawCalibration
        ? `; it was trained on calibration images (train it with --hold-out ${config.calibration} --hold-out-seed ${config.seed} to avoid that)`
        : ''),
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

  const reestimating = config.armTraining === 'fine-tune' && config.bnImages > 0;
  // Fine-tune mode only: from scratch the dense arm is the baseline itself, trained with the same recipe, and
  // each extra arm costs a whole training.
  const fineTuning = config.armTraining === 'fine-tune';
  const tunedSeeds = fineTuning && config.fineTuneEpochs > 0 ? config.fineTuneSeeds : [config.seed];
  // A plan without layers (a selection that chose none) is the baseline as it is.
  const arm = (name: string, plan: PlanLayer[]): ArmSpec =>
    plan.length === 0
      ? { name, plan, kind: 'dense', seeds: [config.seed] }
      : { name, plan, kind: 'decomposed', seeds: tunedSeeds };
  const randomPlans = Array.from({ length: config.randomDraws }, (_, i) =>
    randomPlan(candidates, config.ratios, config.reduction, config.seed * 1000 + i + 1),
  );
  const specs: ArmSpec[] = [
    arm('dense', []),
    arm('selected', selectedPlan),
    arm('all_layers', uniform.plan),
    ...randomPlans.map((plan, i) => arm(`random-${i}`, plan)),
    ...(fineTuning ? [arm('selected_loss', byLoss.plan)] : []),
    // The dense model with the same fine-tune: what the extra training alone is worth (the reference to beat).
    ...(fineTuning && config.fineTuneEpochs > 0
      ? [
          {
            name: 'dense_fine_tuned',
            plan: [],
            kind: 'dense-fine-tuned',
            seeds: tunedSeeds,
          } satisfies ArmSpec,
        ]
      : []),
  ];
  const arms = await runArms(specs, {
    config,
    candidates,
    work,
    executor,
    baseline: baseline.model,
    data: { train: split.rest, test },
  });
  baseline.model.dispose();
  const armResult = (name: string) => arms.get(name)!;
  const dense = armResult('dense');
  const selected = armResult('selected');
  const allLayers = armResult('all_layers');
  const draws = randomPlans.map((_, i) => armResult(`random-${i}`));
  const selectedByLoss = arms.get('selected_loss') ?? null;
  const denseFineTuned = arms.get('dense_fine_tuned') ?? null;

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
    fine_tune_seconds: r.fineTuneSeconds,
    layers: r.plan,
    ...common,
  });
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
        dir: data.dir,
        train: split.rest.count,
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
      `Scan: each candidate layer alone decomposed at each ratio the strategy supports there (one that would not save weights is skipped), no fine-tune, accuracy/loss on the calibration split. scan_seconds = wall-clock seconds of the scan (the pipeline's scanOnExecutor: one scan-layer unit per layer, on ${config.scanThreads >= 2 ? `${config.scanThreads} worker threads (at most one per layer)` : 'this thread'}, the dense calibration evaluation and packing the model included), summed over the runs that computed entries of it (a resumed run adds its own).`,
      "baseline_train_seconds = wall-clock seconds of the baseline's training steps (sum of per-epoch train seconds, per-epoch test evaluation excluded), from its summary.json or its training-run unit; scan_to_baseline_ratio divides the two. Both are wall-clock on this shared 2-core machine, measured at different times, so the load differs.",
      'Fine-tune: the same for every arm — SGD momentum 0.9, weight decay 5e-4, cosine lr from fine_tune_lr, batch, epochs — on the training split without the calibration images, one arm unit of the pipeline (surgery, BatchNorm re-estimation, fine-tune, measurement) per fine-tune seed, each seed also drawing the re-estimation images; test_acc is the mean over seeds (test_acc_runs), test_acc_std their spread. For random, test_acc is the mean over draws and test_acc_std the spread of the draw means.',
      reestimating
        ? `BatchNorm re-estimation: after the surgery, before the fine-tune, every rewritten model's BatchNorm statistics are replaced (core's reestimateBatchNorm) by the average over ${config.bnImages} augmented training images in batches of ${config.batch}. test_acc_after_surgery is the rewritten model with the baseline's statistics, test_acc_before_fine_tune after the re-estimation (both means over the fine-tune seeds, whose re-estimation images differ).`
        : 'No BatchNorm re-estimation (--bn-images 0 or from scratch): test_acc_before_fine_tune = test_acc_after_surgery.',
      `train_img_per_s: gradient computation (forward+backward, no optimizer update) on one fixed batch of timing_batch test images; eval_img_per_s: inference on the same batch with the BatchNorms folded into the convolutions; wall-clock over timing_steps steps after a warm-up (the pipeline's measureModel, as compare's leaderboard), in the arm's first run, ${config.armThreads >= 2 ? `with ${config.armThreads} arm threads sharing the cores` : 'one arm at a time'}. fine_tune_seconds: wall-clock seconds of the training steps of a run (per-epoch test evaluation excluded).`,
      !fineTuning
        ? `Arms trained from scratch (--arm-training scratch): each arm's architecture (basis convolutions at its layers and ratios, everything else as the baseline) is initialised afresh (He-normal basis filters, LeCun-normal coefficients; the rest PyTorch init, seed ${config.seed}) and trained with the baseline's recipe (lr 0.1 cosine, ${config.baselineEpochs} epochs); the dense reference is the baseline itself. test_acc_before_fine_tune is then the untrained network's; fine_tune_seconds is the whole training.`
        : denseFineTuned === null
          ? 'No fine-tune (--fine-tune-epochs 0): every arm is tested as rewritten (after the BatchNorm re-estimation, if any).'
          : `dense_fine_tuned: the dense baseline given the same fine-tune as the arms (test acc ${pct(denseFineTuned.testAcc)}): the extra training alone, the reference an arm has to match to "not degrade the final model".`,
      `dense reference: test acc ${pct(dense.testAcc)}, train ${dense.throughput.trainImgPerS.toFixed(1)} img/s, eval ${dense.throughput.evalImgPerS.toFixed(1)} img/s.`,
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
  // Bad flags (a calibration split too large among them) and a foreign work directory are the user's to fix:
  // say what, without a stack trace.
  if (!(error instanceof BenchError || error instanceof PipelineError)) throw error;
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exitCode = 2;
}
