/**
 * How reliable is the sensitivity scan's signal, and which selector turns it into the best plan? On a trained
 * CIFAR ResNet-20 (`--model-dir`, e.g. the `model/` folder of `decompose train --hold-out 500 --hold-out-seed 0`)
 * and the bundled subset, with the calibration split held out of the training images (the pipeline's
 * `resolveCalibration`, the same split as `decompose train --hold-out` and `bench:selection`, and its warning
 * when the model's training run saw any of those images):
 *
 * 1. plain scans (the pipeline's `scanOnExecutor`: `scan-layer` units on this thread or `--workers` threads;
 *    basis strategy, every trainable 3×3 conv × each ratio, no fine-tune) on the whole calibration split and
 *    on each of its two disjoint halves; with `--adaptive`, also the whole split measured again with each
 *    entry's BatchNorm statistics re-estimated on augmented training images (each entry an arm of the
 *    pipeline's `runArmPipeline`, its one layer at its ratio, tested on the calibration split; slow);
 * 2. reliability: the Spearman rank correlation of the per-entry calibration accuracy drop, and of the loss
 *    increase, between the two halves (and, with `--adaptive`, between the plain and the adaptive scan), over
 *    all entries and within each ratio — the selection works at the mild ratios, so the within-ratio figures
 *    are the ones that say whether the scan can rank layers there;
 * 3. selectors: `selectPerLayer` and `selectGreedy` × metric accuracy / loss × ratio floor none / ≥ 0.25 /
 *    ≥ 0.5 (the table's entries below the floor removed) for the same parameter budget, on the plain table
 *    (and the adaptive one), plus one ratio everywhere (`uniformPlan`); each plan is an arm of
 *    `runArmPipeline` (weights from the trained layers, no fine-tune), tested as the surgery left it and after
 *    its BatchNorm statistics are re-estimated on `--bn-images` augmented training images.
 *
 * Writes bench/results/scan-signal.json and prints the correlations and a table of the plans. Run
 * `node bench/dist/scan-signal.js --help` for the flags.
 */
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basisStrategy } from '@decompose/basis';
import { type Cifar10Images, findBundledSubset, readCifar10, selectImages } from '@decompose/cifar10';
import { type EngineInfo, fileSystem, initEngine } from '@decompose/engine';
import { type Executor, localExecutor } from '@decompose/jobs';
import {
  type ArmRecipe,
  CalibrationError,
  PIPELINE_CATALOGUE,
  readTrainingRecord,
  resolveCalibration,
  runArmPipeline,
  ScanRequestError,
  scanLayers,
  scanOnExecutor,
} from '@decompose/pipeline';
import {
  accuracyDrop,
  type Budget,
  lossIncrease,
  type Metric,
  type ScanEntry,
  type Selection,
  type SensitivityMetric,
  type SensitivityTable,
  selectGreedy,
  selectPerLayer,
} from '@decompose/sensitivity';
import { evaluate } from '@decompose/train';
import * as tfl from '@tensorflow/tfjs-layers';
import { firstImages } from './calibration-images.js';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { printTable, writeAtomically } from './output.js';
import { type Candidate, candidateLayers, type PlanLayer, planCost, uniformPlan } from './selection-plan.js';

const USAGE = `node bench/dist/scan-signal.js --model-dir DIR [flags]
  --model-dir DIR     trained ResNet-20 (DIR/model.json), e.g. the model/ folder of
                      \`decompose train --hold-out <calibration> --hold-out-seed <seed>\`, so that the
                      calibration images stay out of its training (required)
  --calibration N     images held out of the training set for the scans (default 500); the halves are
                      its first ⌊N/2⌋ and the remaining images
  --ratios LIST       scanned ratios (default 0.125,0.25,0.5,0.75)
  --reduction X       fraction of candidate-layer params every plan removes (default 0.4)
  --bn-images N       augmented training images the BatchNorm statistics are re-estimated on, after each
                      plan's surgery and in the adaptive scan (default 1024)
  --adaptive          also scan with each entry's BatchNorm statistics re-estimated (slow: on 500 images
                      × 76 entries about 12 min against 4 for the plain scan)
  --workers N         worker threads the plain scans run on, one layer per unit (default 0: this thread)
  --seed N            seed of the split, the augmented images and the surgery (default 0)
  --limit-test N      test only on the first N test images (smoke runs)
  --out FILE          result JSON (default bench/results/scan-signal.json)`;

/** Thrown for a bad flag value. */
export class ScanSignalOptionError extends BenchError {
  override readonly name = 'ScanSignalOptionError';
}

interface Config {
  modelDir: string;
  calibration: number;
  ratios: number[];
  reduction: number;
  bnImages: number;
  adaptive: boolean;
  workers: number;
  seed: number;
  limitTest: number | null;
  out: string;
}

function parseConfig(argv: string[]): Config | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      'model-dir': { type: 'string' },
      calibration: { type: 'string', default: '500' },
      ratios: { type: 'string', default: '0.125,0.25,0.5,0.75' },
      reduction: { type: 'string', default: '0.4' },
      'bn-images': { type: 'string', default: '1024' },
      adaptive: { type: 'boolean', default: false },
      workers: { type: 'string', default: '0' },
      seed: { type: 'string', default: '0' },
      'limit-test': { type: 'string' },
      out: { type: 'string' },
    },
  });
  if (values.help) return null;
  const { integer, fraction } = flagParsers(ScanSignalOptionError);
  const modelDir = values['model-dir'];
  if (modelDir === undefined) throw new ScanSignalOptionError('--model-dir is required (see --help).');
  const limitTest = values['limit-test'];
  return {
    modelDir: path.resolve(modelDir),
    // Two images at least, so that each half has one.
    calibration: integer('calibration', values.calibration, 2),
    ratios: [...new Set(values.ratios.split(',').map((r) => fraction('ratios', r.trim())))].sort(
      (a, b) => a - b,
    ),
    reduction: fraction('reduction', values.reduction),
    bnImages: integer('bn-images', values['bn-images'], 1),
    adaptive: values.adaptive,
    workers: integer('workers', values.workers, 0),
    seed: integer('seed', values.seed, 0),
    limitTest: limitTest === undefined ? null : integer('limit-test', limitTest, 1),
    out: path.resolve(values.out ?? fileURLToPath(new URL('../results/scan-signal.json', import.meta.url))),
  };
}

const log = (text: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
/** Images per forward pass of the BatchNorm re-estimations and of the tests. */
const BN_BATCH = 128;
/** Ratio floors of the selector variants: 0 keeps every scanned ratio. */
const RATIO_FLOORS = [0, 0.25, 0.5] as const;
const METRICS: readonly SensitivityMetric[] = ['accuracy', 'loss'];

/**
 * Ranks of `values` from 1 (smallest), tied values sharing the mean of the ranks they span (e.g. two values
 * tied for ranks 2 and 3 both get 2.5).
 */
export function averageRanks(values: readonly number[]): number[] {
  if (values.some((v) => Number.isNaN(v))) throw new RangeError('averageRanks: values must not be NaN.');
  const order = values.map((_, i) => i).sort((i, j) => values[i]! - values[j]!);
  const ranks = new Array<number>(values.length);
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && values[order[end]!] === values[order[start]!]) end++;
    // Positions start..end-1 are 1-based ranks start+1..end; their mean:
    const rank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) ranks[order[k]!] = rank;
    start = end;
  }
  return ranks;
}

/** Pearson correlation of two equally long series; NaN when either is constant or shorter than 2. */
function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  if (n < 2) return Number.NaN;
  const meanA = a.reduce((s, x) => s + x, 0) / n;
  const meanB = b.reduce((s, x) => s + x, 0) / n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i]! - meanA;
    const db = b[i]! - meanB;
    ab += da * db;
    aa += da * da;
    bb += db * db;
  }
  return aa === 0 || bb === 0 ? Number.NaN : ab / Math.sqrt(aa * bb);
}

/**
 * Spearman rank correlation of two paired series: the Pearson correlation of their ranks, ties given their
 * average rank. NaN when a series is constant (every value tied) or has fewer than 2 values.
 */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) {
    throw new RangeError(`spearman: the series differ in length (${a.length} and ${b.length}).`);
  }
  return pearson(averageRanks(a), averageRanks(b));
}

/** One scan run: its table and the images it was measured on. */
interface Scan {
  name: string;
  table: SensitivityTable;
  images: number;
}

const entryKey = (e: Pick<ScanEntry, 'layer' | 'ratio'>) => `${e.layer}@${e.ratio}`;

const sensitivity = (table: SensitivityTable, entry: ScanEntry, metric: SensitivityMetric) =>
  metric === 'accuracy' ? accuracyDrop(table, entry) : lossIncrease(table, entry);

/** Spearman correlation of one sensitivity between the entries two scans share (by layer and ratio). */
function correlate(
  x: SensitivityTable,
  y: SensitivityTable,
  metric: SensitivityMetric,
  ratio: number | null,
): { spearman: number | null; entries: number } {
  const other = new Map(y.entries.map((e) => [entryKey(e), e]));
  const a: number[] = [];
  const b: number[] = [];
  for (const e of x.entries) {
    const f = other.get(entryKey(e));
    if (f === undefined || (ratio !== null && e.ratio !== ratio)) continue;
    a.push(sensitivity(x, e, metric));
    b.push(sensitivity(y, f, metric));
  }
  const r = spearman(a, b);
  return { spearman: Number.isNaN(r) ? null : r, entries: a.length };
}

interface Correlation {
  between: [string, string];
  metric: SensitivityMetric;
  all: { spearman: number | null; entries: number };
  by_ratio: { ratio: number; spearman: number | null; entries: number }[];
}

function correlations(x: Scan, y: Scan, ratios: readonly number[]): Correlation[] {
  return METRICS.map((metric) => ({
    between: [x.name, y.name],
    metric,
    all: correlate(x.table, y.table, metric, null),
    by_ratio: ratios.map((ratio) => ({ ratio, ...correlate(x.table, y.table, metric, ratio) })),
  }));
}

/** Test accuracy and loss of a plan's model as the surgery left it and after the BatchNorm re-estimation. */
interface PlanTest {
  afterSurgery: Metric;
  afterBatchNorm: Metric;
}

interface Variant {
  name: string;
  /** Scan the selection ran on (null for the uniform plan). */
  scan: string | null;
  selector: 'per-layer' | 'greedy' | 'uniform';
  metric: SensitivityMetric | null;
  ratioFloor: number | null;
  selection: Selection | null;
  uniformRatio: number | null;
  plan: PlanLayer[];
}

/**
 * The budget of a selection on `table`: `reduction` of every candidate layer's params. A candidate the scan
 * left out (a ratio it does not support) is not in the table, so the table's fraction is scaled to remove the
 * same number of parameters (as `bench:selection` does); on ResNet-20 every candidate is scanned.
 */
function budgetFor(table: SensitivityTable, candidates: readonly Candidate[], reduction: number): Budget {
  const scanned = table.layers.reduce((s, l) => s + l.cost.params, 0);
  return {
    kind: 'reduction',
    target: 'params',
    reduction: Math.min(reduction * (planCost(candidates, []).denseParams / scanned), 1 - 1e-9),
  };
}

function selectorVariants(scan: Scan, candidates: readonly Candidate[], reduction: number): Variant[] {
  const budget = budgetFor(scan.table, candidates, reduction);
  const variants: Variant[] = [];
  let previous: number | null = null;
  for (const floor of RATIO_FLOORS) {
    const table = { ...scan.table, entries: scan.table.entries.filter((e) => e.ratio >= floor) };
    if (table.entries.length === 0) {
      log(`${scan.name}: no scanned ratio ≥ ${floor}, its variants are skipped`);
      continue;
    }
    if (previous !== null && table.entries.length === previous) {
      log(
        `${scan.name}: the ratio floor ${floor} removes no further scanned ratio, its variants are skipped`,
      );
      continue;
    }
    previous = table.entries.length;
    for (const [selector, select] of [
      ['per-layer', selectPerLayer],
      ['greedy', selectGreedy],
    ] as const) {
      for (const metric of METRICS) {
        const selection = select(table, budget, { metric });
        variants.push({
          name: `${scan.name} ${selector} ${metric === 'accuracy' ? 'acc' : 'loss'}${floor > 0 ? `, ratio≥${floor}` : ''}`,
          scan: scan.name,
          selector,
          metric,
          ratioFloor: floor > 0 ? floor : null,
          selection,
          uniformRatio: null,
          plan: selection.choices.map((c) => ({ layer: c.layer, ratio: c.ratio })),
        });
      }
    }
  }
  return variants;
}

/**
 * A plan as an arm of the pipeline (`runArmPipeline`: surgery with weights from the trained layers, the
 * re-estimation of `recipe`, no fine-tune), tested on `data.test` as the surgery left it and after its
 * BatchNorm statistics are re-estimated. The trained model is not modified.
 */
async function testPlan(
  base: tfl.LayersModel,
  plan: readonly PlanLayer[],
  data: { train: Cifar10Images; test: Cifar10Images },
  recipe: ArmRecipe,
  seed: number,
): Promise<PlanTest> {
  const arm = await runArmPipeline({
    baseline: base,
    strategy: basisStrategy.name,
    perLayerOptions: Object.fromEntries(plan.map((p) => [p.layer, { ratio: p.ratio }])),
    init: 'trained',
    seed,
    recipe,
    data,
  });
  arm.model.dispose();
  // Both are measured: the arm has data and recipe.bnImages ≥ 1.
  const { surgery, batchNorm } = arm;
  if (surgery === null || batchNorm === null) throw new Error('The arm pipeline tested nothing.');
  return {
    afterSurgery: { accuracy: surgery.accuracy, loss: surgery.loss },
    afterBatchNorm: { accuracy: batchNorm.accuracy, loss: batchNorm.loss },
  };
}

/**
 * The adaptive scan: each entry of `plain` (one layer at one ratio) as an arm of the pipeline, measured on the
 * same calibration split after its BatchNorm statistics are re-estimated. Its table is `plain`'s with those
 * metrics (layers, costs and the baseline are the same); `fineTuneSteps` 1 stands for the re-estimation.
 */
async function adaptiveScan(
  plain: Scan,
  base: tfl.LayersModel,
  data: { train: Cifar10Images; test: Cifar10Images },
  recipe: ArmRecipe,
  seed: number,
): Promise<Scan> {
  const started = performance.now();
  const entries: ScanEntry[] = [];
  const total = plain.table.entries.length;
  for (const entry of plain.table.entries) {
    const tested = await testPlan(base, [entry], data, recipe, seed);
    entries.push({ ...entry, metric: tested.afterBatchNorm });
    logQuarter('adaptive', entries.length, total, started);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    name: 'adaptive',
    table: { ...plain.table, entries, fineTuneSteps: 1, seconds },
    images: plain.images,
  };
}

/** About four lines a scan: after every quarter of its entries. */
function logQuarter(name: string, done: number, total: number, started: number): void {
  if (done % Math.ceil(total / 4) === 0 && done < total)
    log(`  ${name}: ${done}/${total} entries, ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

function tableJson(scan: Scan) {
  const { table } = scan;
  return {
    images: scan.images,
    seconds: table.seconds,
    fine_tune_steps: table.fineTuneSteps,
    baseline: table.baseline,
    entries: table.entries.map((e) => ({
      layer: e.layer,
      ratio: e.ratio,
      accuracy: e.metric.accuracy,
      loss: e.metric.loss,
      drop: accuracyDrop(table, e),
      loss_increase: lossIncrease(table, e),
      params: e.cost.params,
    })),
  };
}

const correlationCell = (c: { spearman: number | null; entries: number }) =>
  c.spearman === null ? `— (${c.entries})` : c.spearman.toFixed(3);

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
  const test = firstImages(dataset.test, config.limitTest);
  const base = await tfl.loadLayersModel(fileSystem(config.modelDir));
  const summaryFile = path.join(config.modelDir, '..', 'summary.json');
  const record = await readTrainingRecord(summaryFile);
  const split = resolveCalibration(
    dataset.train,
    record,
    { count: config.calibration, seed: config.seed },
    { count: '--calibration', model: '--model-dir' },
  );
  const half = Math.floor(split.calibration.count / 2);
  const range = (from: number, to: number) => Uint32Array.from({ length: to - from }, (_, i) => from + i);
  const halves = {
    half_a: selectImages(split.calibration, range(0, half)),
    half_b: selectImages(split.calibration, range(half, split.calibration.count)),
  };
  const candidates = candidateLayers(base, basisStrategy);
  // The candidates the strategy rewrites at every ratio, as the scan picks them.
  const scanned = scanLayers(
    base,
    basisStrategy,
    config.ratios,
    {},
    candidates.map((c) => c.layer),
    '--ratios',
  );
  if (scanned.length < candidates.length) {
    log(
      `not scanned (a ratio the strategy does not support there): ${candidates
        .filter((c) => !scanned.includes(c.layer))
        .map((c) => c.layer)
        .join(', ')}`,
    );
  }
  // The pipeline's rule: no warning means the training run held every calibration image out.
  const saw = existsSync(summaryFile) ? split.warning !== null : null;
  log(
    `model ${config.modelDir}: ${candidates.length} candidate 3×3 convs, ${planCost(candidates, []).denseParams} params; ` +
      `calibration ${split.description}: ${split.calibration.count} images (halves ${halves.half_a.count} + ${halves.half_b.count}), ` +
      `test ${test.count}`,
  );
  if (split.warning !== null) log(split.warning);
  const recipe: ArmRecipe = {
    epochs: 0,
    bnImages: config.bnImages,
    batch: BN_BATCH,
    seed: config.seed,
    // Unused without a fine-tune: `decompose train`'s defaults.
    lr: 0.1,
    momentum: 0.9,
    nesterov: false,
    weightDecay: 5e-4,
    decayOn: 'all',
    schedule: 'cosine',
    gamma: 0.1,
    warmupEpochs: 0,
    labelSmoothing: 0,
    augment: true,
    workers: 0,
  };
  const executor: Executor = await localExecutor(
    config.workers > 0 ? { threads: config.workers, catalogue: PIPELINE_CATALOGUE } : {},
  );
  try {
    const dense = await evaluate(base, test, BN_BATCH);
    log(`dense model: test acc ${pct(dense.accuracy)}, loss ${dense.loss.toFixed(3)}`);

    const runScan = async (name: string, data: Cifar10Images): Promise<Scan> => {
      log(
        `scan ${name}: ${scanned.length} layers × ratios ${config.ratios.join(', ')} on ${data.count} images` +
          (config.workers > 0 ? ` in ${config.workers} worker threads` : ''),
      );
      const started = performance.now();
      const table = await scanOnExecutor(
        executor,
        {
          model: base,
          strategy: basisStrategy,
          strategySpecifier: basisStrategy.name,
          layers: scanned,
          layersField: '--ratios',
          ratios: config.ratios,
          calibration: data,
          seed: config.seed,
        },
        { onProgress: ({ done, total }) => logQuarter(name, done, total, started) },
      );
      log(
        `scan ${name}: ${table.seconds.toFixed(0)} s, calibration acc ${pct(table.baseline.accuracy)}, loss ${table.baseline.loss.toFixed(3)}`,
      );
      return { name, table, images: data.count };
    };
    const plain = await runScan('plain', split.calibration);
    const halfA = await runScan('half_a', halves.half_a);
    const halfB = await runScan('half_b', halves.half_b);
    if (config.adaptive)
      log(`scan adaptive: the ${plain.table.entries.length} entries of plain, each re-estimated`);
    const adaptive = config.adaptive
      ? await adaptiveScan(plain, base, { train: split.rest, test: split.calibration }, recipe, config.seed)
      : null;
    const scans = [plain, halfA, halfB, ...(adaptive === null ? [] : [adaptive])];

    const correlated = [
      ...correlations(halfA, halfB, config.ratios),
      ...(adaptive === null ? [] : correlations(plain, adaptive, config.ratios)),
    ];
    printTable(
      ['Spearman', 'metric', 'all', ...config.ratios.map((r) => `ratio ${r}`)],
      correlated.map((c) => [
        `${c.between[0]} ~ ${c.between[1]}`,
        c.metric,
        correlationCell(c.all),
        ...c.by_ratio.map(correlationCell),
      ]),
    );

    const uniform = uniformPlan(candidates, config.reduction);
    const variants: Variant[] = [
      ...selectorVariants(plain, candidates, config.reduction),
      ...(adaptive === null ? [] : selectorVariants(adaptive, candidates, config.reduction)),
      {
        name: `uniform ratio ${uniform.ratio}`,
        scan: null,
        selector: 'uniform',
        metric: null,
        ratioFloor: null,
        selection: null,
        uniformRatio: uniform.ratio,
        plan: uniform.plan,
      },
    ];
    // Variants can pick the same plan (e.g. per-layer and greedy on a small table): each plan is tested once.
    const tested = new Map<string, PlanTest>();
    const records = [];
    for (const [i, variant] of variants.entries()) {
      const key = JSON.stringify(variant.plan);
      const cost = planCost(candidates, variant.plan);
      let result = tested.get(key) ?? null;
      if (result === null && variant.plan.length > 0) {
        result = await testPlan(base, variant.plan, { train: split.rest, test }, recipe, config.seed);
        tested.set(key, result);
      }
      log(
        `${i + 1}/${variants.length} ${variant.name}: ${variant.plan.length} layers, params −${pct(cost.paramsReduction)}` +
          (result === null
            ? ', nothing selected'
            : `, test acc ${pct(result.afterSurgery.accuracy)} after surgery, ${pct(result.afterBatchNorm.accuracy)} after BN re-estimation`),
      );
      const selection = variant.selection;
      const chosen = new Map(selection?.choices.map((c) => [entryKey(c), c]) ?? []);
      records.push({
        name: variant.name,
        scan: variant.scan,
        selector: variant.selector,
        metric: variant.metric,
        ratio_floor: variant.ratioFloor,
        uniform_ratio: variant.uniformRatio,
        met: selection?.met ?? true,
        threshold: selection?.threshold ?? null,
        estimated_drop: selection?.estimatedDrop ?? null,
        estimated_loss_increase: selection?.estimatedLossIncrease ?? null,
        candidate_params_reduction: cost.paramsReduction,
        candidate_macs_reduction: cost.macsReduction,
        test_after_surgery: result?.afterSurgery ?? null,
        test_after_bn: result?.afterBatchNorm ?? null,
        plan: variant.plan.map((p) => {
          const choice = chosen.get(entryKey(p));
          return {
            layer: p.layer,
            ratio: p.ratio,
            ...(choice === undefined ? {} : { drop: choice.drop, loss_increase: choice.lossIncrease }),
          };
        }),
      });
    }

    const budget: Budget = { kind: 'reduction', target: 'params', reduction: config.reduction };
    const result = {
      date: new Date().toISOString(),
      engine,
      config: {
        ...config,
        data: {
          dir: dataDir,
          train: split.rest.count,
          calibration: split.calibration.count,
          half_a: halves.half_a.count,
          half_b: halves.half_b.count,
          test: test.count,
        },
        model: 'resnet20 from --model-dir',
        saw_calibration_images: saw,
        strategy: `${basisStrategy.name}@${basisStrategy.version}, options { ratio }, weights from the trained layer`,
        layers: scanned,
        budget,
        ratio_floors: RATIO_FLOORS,
        bn_batch: BN_BATCH,
      },
      notes: [
        "Scans: the pipeline's scanOnExecutor (scan-layer units, one per layer, in this thread or config.workers worker threads) with no fine-tune; half_a is the calibration split's first half (in the training set's order), half_b the rest. adaptive: each entry of plain run as an arm of the pipeline (runArmPipeline: surgery, BatchNorm re-estimation on the bn_images augmented training images in batches of bn_batch, no fine-tune) and measured on the whole split after the re-estimation (its fine_tune_steps 1 stands for the re-estimation). seconds: wall-clock of each scan.",
        'Correlations: Spearman rank correlation (ties at their average rank) of the per-entry calibration accuracy drop, or loss increase, between two scans, over the entries both have (all) and within each ratio; null when a series is constant (e.g. every drop 0).',
        "Variants: selectPerLayer / selectGreedy for the budget (reduction of the candidate layers' params) by accuracy drop or loss increase, on the scan's table with the entries below ratio_floor removed; uniform: one ratio on every candidate layer (uniformPlan). estimated_drop / estimated_loss_increase: the selector's sums of the chosen single-layer sensitivities.",
        "Tests: each plan run as an arm of the pipeline (runArmPipeline, init 'trained', epochs 0) on the trained model, tested on the test set as the surgery left it (test_after_surgery), then its BatchNorm statistics re-estimated on the bn_images augmented training images (batches of bn_batch, the tests' batch too) and tested again (test_after_bn). Identical plans are tested once; a ratio floor that removes no further scanned ratio (e.g. 0.25 when the smallest scanned ratio is 0.5) is skipped.",
      ],
      dense_test: { accuracy: dense.accuracy, loss: dense.loss },
      scans: Object.fromEntries(scans.map((s) => [s.name, tableJson(s)])),
      correlations: correlated,
      variants: records,
    };
    await writeAtomically(config.out, `${JSON.stringify(result, null, 2)}\n`);
    printTable(
      [
        'variant',
        'layers',
        'params −',
        'MACs −',
        'est. drop',
        'est. loss +',
        'surgery',
        'BN re-est.',
        'BN loss',
      ],
      records.map((r) => [
        r.name,
        String(r.plan.length),
        pct(r.candidate_params_reduction) + (r.met ? '' : ' (budget not met)'),
        pct(r.candidate_macs_reduction),
        r.estimated_drop === null ? '—' : pct(r.estimated_drop),
        r.estimated_loss_increase === null ? '—' : r.estimated_loss_increase.toFixed(3),
        r.test_after_surgery === null ? '—' : pct(r.test_after_surgery.accuracy),
        r.test_after_bn === null ? '—' : pct(r.test_after_bn.accuracy),
        r.test_after_bn === null ? '—' : r.test_after_bn.loss.toFixed(3),
      ]),
    );
    process.stdout.write(
      `\ndense: test acc ${pct(dense.accuracy)}; scans: ${scans.map((s) => `${s.name} ${s.table.seconds.toFixed(0)} s`).join(', ')}\nwrote ${config.out}\n`,
    );
  } finally {
    await executor.close();
    base.dispose();
  }
}

/** Whether this module is the script node was started with (the tests import it for its helpers). */
const isScript = (() => {
  const started = process.argv[1];
  if (started === undefined || !existsSync(started)) return false;
  return realpathSync(started) === realpathSync(fileURLToPath(import.meta.url));
})();

if (isScript) {
  try {
    await main();
  } catch (error) {
    // Bad flags are the user's to fix: say what, without a stack trace.
    if (
      !(error instanceof BenchError || error instanceof CalibrationError || error instanceof ScanRequestError)
    )
      throw error;
    process.stderr.write(`${error.name}: ${error.message}\n`);
    process.exitCode = 2;
  }
}
