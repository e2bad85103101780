import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CIFAR10_IMAGE_SHAPE, type Cifar10Images } from '@decompose/cifar10';
import { parseStrategyOptions, StrategyOptionsError } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import type { Executor } from '@decompose/jobs';
import {
  type ArmEvent,
  type ArmUnitResult,
  armUnit,
  BUILT_IN_STRATEGIES,
  describeReestimation,
  estimateArmSeconds,
  loadModel,
  loadPackedModel,
  measureModel,
  modelPlugins,
  packImageSet,
  packModel,
  type ResolvedStrategy,
  readModelInputShape,
  resolveStrategy,
  saveModel,
  selectionPlan,
  trainOnExecutor,
} from '@decompose/pipeline';
import type { SensitivityTable } from '@decompose/sensitivity';
import { type EpochMetrics, modelGeometry, readMetrics } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkTrainingBatch } from '../config.js';
import { dataRecord, type LoadedData, loadData } from '../data.js';
import { describeEngine } from '../engine-report.js';
import { ConfigError } from '../errors.js';
import { openExecutor, type QueueAddress, queueAddress } from '../executor.js';
import { ensureDirectory, writeAtomic, writeJsonAtomic } from '../files.js';
import type { Console } from '../progress.js';
import { machineInfo } from '../report/machine.js';
import { formatSelection } from '../report/selection.js';
import { calibrationSplit, select } from '../sensitivity/command.js';
import { matchLayers, runScan, scanWorkerCount, weightsFingerprint } from '../sensitivity/scan.js';
import { locateTrainedModel, type TrainedModel } from '../sensitivity/trained.js';
import { percent, unitProgress } from '../train.js';
import { type ArmConfig, type CompareConfig, calibrationCount, type Recipe } from './config.js';
import { weightBytes } from './measure.js';
import { writeCompareReport } from './report.js';
import {
  type ArmResult,
  type ArmRow,
  type BaselineResult,
  COMPARE_FILES,
  type CompareResults,
  type FailedArm,
  type Phase,
} from './results.js';

const phaseNames = {
  scan: 'sensitivity scan',
  surgery: 'surgery',
  batchNorm: 'BatchNorm re-estimation',
  fineTune: 'fine-tune',
  measure: 'measurement',
};

async function timed<T>(phases: Phase[], phase: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const value = await run();
  phases.push({ phase, seconds: (performance.now() - started) / 1000 });
  return value;
}

/** Everything a run shares across its arms. */
interface Context {
  config: CompareConfig;
  reportDir: string;
  out: Console;
  train: Cifar10Images;
  test: Cifar10Images;
  baseline: tfl.LayersModel;
  baselinePlugins: string[];
  fingerprint: string;
  seed: number;
  executor: Executor;
  /** The queue the units run on (`--queue`), or none: in this process. */
  queue: QueueAddress | undefined;
  /** Blob ids of the packed baseline and images, put once for every arm's unit. */
  blobs: { baseline: string; train: string; test: string };
}

/**
 * The baseline model: loaded from `trained` (`baseline.modelDir`, located before the data is read, which follows
 * its input size), or, when null, trained (resumably) into `<report>/baseline/`.
 */
async function prepareBaseline(
  config: CompareConfig,
  trained: TrainedModel | null,
  reportDir: string,
  data: LoadedData,
  out: Console,
  phases: Phase[],
  executor: Executor,
): Promise<{
  model: tfl.LayersModel;
  modelDir: string;
  seed: number;
  trainedHere: boolean;
  epochs: EpochMetrics[];
}> {
  const b = config.baseline;
  if (trained !== null) {
    const seed = trained.trainingSeed ?? b.seed;
    out.log(`baseline: ${trained.modelDir} (calibration seed ${seed})`);
    const model = await loadModel(trained.modelDir);
    try {
      // A model built for other images than the data's is refused before any arm, naming both.
      modelGeometry(model, data.test, data.name);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return { model, modelDir: trained.modelDir, seed, trainedHere: false, epochs: [] };
  }
  const dir = path.join(reportDir, COMPARE_FILES.baseline);
  const modelDir = path.join(dir, COMPARE_FILES.model);
  const recipeFile = path.join(dir, COMPARE_FILES.recipe);
  // The arms' sensitivity scans measure on images the baseline never trained on.
  const heldOut = calibrationCount(config);
  const recipe = { ...b, heldOutForCalibration: heldOut };
  if (existsSync(path.join(modelDir, 'model.json'))) {
    const earlier = await readFile(recipeFile, 'utf8')
      .then((text) => JSON.parse(text) as object)
      .catch(() => null);
    if (earlier === null || settingsKey(earlier) !== settingsKey(recipe)) {
      throw new ConfigError([
        `'baseline': ${dir} holds a baseline trained with other settings (${recipeFile}); ` +
          'delete that folder to train it again, or use another run name',
      ]);
    }
    out.log(`baseline: trained earlier in ${modelDir}`);
    phases.push({ phase: 'baseline training', seconds: 0, note: 'reused from an earlier run' });
    return {
      model: await loadModel(modelDir),
      modelDir,
      seed: b.seed,
      trainedHere: true,
      epochs: await baselineEpochs(dir),
    };
  }
  checkTrainingBatch("'baseline.batch'", b.batch, data.train.count - (heldOut ?? 0));
  out.log(
    `baseline: training ${b.model} for ${b.epochs} epochs (lr ${b.lr}, ${b.schedule}) on ${data.train.count - (heldOut ?? 0)} images` +
      (heldOut === null ? '' : ` (${heldOut} held out for the sensitivity scans)`),
  );
  // A training-run unit: on this thread, or on a queue worker with --queue.
  const training = await timed(phases, 'baseline training', async () => {
    const { model, epochs } = await trainOnExecutor(
      executor,
      {
        architecture: { arch: b.model, shortcut: b.shortcut, init: b.init, seed: b.seed },
        data,
        recipe: b,
        holdOut: heldOut === null ? null : { count: heldOut, seed: b.seed },
        // In this process the baseline checkpoints into the report, so a re-run resumes it.
        ...(config.queue === undefined ? { checkpointDir: path.join(dir, COMPARE_FILES.checkpoints) } : {}),
      },
      { what: "the baseline's training", onProgress: unitProgress(b.batch, out) },
    );
    try {
      await saveModel(model, modelDir);
      await writeJsonAtomic(path.join(dir, COMPARE_FILES.epochs), epochs);
      await writeAtomic(recipeFile, JSON.stringify(recipe));
    } catch (error) {
      model.dispose();
      throw error;
    }
    return { model, epochs };
  });
  return { ...training, modelDir, seed: b.seed, trainedHere: true };
}

/** The epochs of a baseline trained by compare (`epochs.json`; a report of before units: its checkpoints' record). */
async function baselineEpochs(dir: string): Promise<EpochMetrics[]> {
  const file = path.join(dir, COMPARE_FILES.epochs);
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as EpochMetrics[];
  return readMetrics(path.join(dir, COMPARE_FILES.checkpoints));
}

/**
 * Settings as compared with those an earlier run recorded. The worker count is left out (as a training
 * checkpoint leaves it out): it follows the machine's cores by default, and a report moved to another machine
 * must still resume.
 */
function settingsKey(settings: object): string {
  const { workers: _, ...rest } = settings as { workers?: unknown };
  return JSON.stringify(rest);
}

/** An earlier result of this arm, if it was made with the same settings from the same baseline. */
async function finishedArm(
  file: string,
  arm: ArmConfig,
  recipe: Recipe,
  fingerprint: string,
  index: number,
): Promise<ArmResult | null> {
  if (!existsSync(file)) return null;
  const result = JSON.parse(await readFile(file, 'utf8')) as ArmResult;
  const same =
    JSON.stringify(result.config) === JSON.stringify(arm) &&
    settingsKey(result.recipe) === settingsKey(recipe) &&
    result.baselineFingerprint === fingerprint;
  if (!same) {
    throw new ConfigError([
      `'arms.${index}' (${arm.name}): ${file} holds a result made with other settings or another baseline; ` +
        'delete its folder to redo it, or give the arm a new name',
    ]);
  }
  return result;
}

/** What the coordinator decides for an arm before its unit: the scan and selection of a selecting arm. */
interface ArmPlan {
  scan: SensitivityTable | null;
  scanWorkers: number | null;
  selection: ArmResult['selection'];
  scanSeconds: number;
}

/**
 * The sensitivity scan and selection of a selecting arm, decided here by the coordinator: the scan's units run
 * on worker threads (or this thread), or with `--queue` on the queue's workers; an arm with layers by glob
 * plans nothing.
 */
async function planArm(
  ctx: Context,
  arm: ArmConfig,
  index: number,
  { strategy }: ResolvedStrategy,
): Promise<ArmPlan> {
  const { out } = ctx;
  const recipe = ctx.config.fineTune;
  if (arm.select === undefined) return { scan: null, scanWorkers: null, selection: null, scanSeconds: 0 };
  const s = arm.select;
  // As many threads as the arm's fine-tune, which runs right after the scan.
  const workers = s.workers ?? recipe.workers;
  const started = performance.now();
  const { calibration, rest } = calibrationSplit(
    ctx.train,
    s.calibration,
    ctx.seed,
    `'arms.${index}.select.calibration'`,
  );
  const scan = await runScan(
    {
      model: ctx.baseline,
      strategy,
      strategySpecifier: arm.strategy,
      modelPlugins: ctx.baselinePlugins,
      layers: arm.layers,
      ratios: s.ratios,
      baseOptions: arm.options,
      calibration,
      fineTuneData: rest,
      fineTuneSteps: s.fineTuneSteps,
      fineTuneLr: s.fineTuneLr,
      measureTime: s.measureTime,
      batch: recipe.batch,
      seed: ctx.seed,
      cacheFile: path.join(ctx.reportDir, COMPARE_FILES.scanCache),
      layersField: `'arms.${index}.layers'`,
      workers,
      ...(ctx.queue === undefined ? {} : { queue: ctx.queue }),
    },
    out,
  );
  const scanSeconds = (performance.now() - started) / 1000;
  const selection = select(scan, s.budget, s.selector, s.metric);
  for (const line of formatSelection(selection)) out.log(line);
  return {
    scan,
    // 0 with --queue, as sensitivity records it: no threads of this process.
    scanWorkers: ctx.queue === undefined ? scanWorkerCount({ ...s, workers }, scan.layers.length) : 0,
    selection,
    scanSeconds,
  };
}

/**
 * The arm's unit: surgery (of the selected layers and ratios, or of its layers), re-estimation, fine-tune,
 * measurement. On a queue it carries its estimated fine-tune seconds as its cost, so that the workers start the
 * longest arms first (in this process arms run one after another, and the estimate would only cost time).
 */
async function armUnitOf(ctx: Context, arm: ArmConfig, { plugin }: ResolvedStrategy, plan: ArmPlan) {
  const { selection } = plan;
  const surgery = {
    // A plugin by its absolute specifier, which a worker imports as well as this process.
    strategy: plugin ?? arm.strategy,
    // none: core's default, every layer the strategy supports
    ...(selection ? selectionPlan(selection) : { layers: arm.layers }),
    options: arm.options,
    init: 'trained' as const,
    seed: ctx.config.fineTune.seed,
  };
  // An arm whose surgery fails here fails the same way on its worker, where it is reported as that arm's
  // failure (the others go on): uncosted, it is started last.
  const cost =
    ctx.queue === undefined
      ? undefined
      : await estimateArmSeconds({
          ...surgery,
          baseline: ctx.baseline,
          recipe: ctx.config.fineTune,
          train: ctx.train,
        }).catch(() => undefined);
  if (cost !== undefined)
    ctx.out.log(`arm '${arm.name}': fine-tune estimated at ${cost.toFixed(0)} s on this machine`);
  return armUnit.unit(
    {
      ...surgery,
      baseline: ctx.blobs.baseline,
      recipe: ctx.config.fineTune,
      data: { train: ctx.blobs.train, test: ctx.blobs.test },
      measure: ctx.config.measure,
      // In this process the fine-tune checkpoints into the report, so a re-run resumes a half fine-tuned arm.
      ...(ctx.config.queue === undefined
        ? { checkpointDir: path.join(ctx.reportDir, COMPARE_FILES.arms, arm.name, COMPARE_FILES.checkpoints) }
        : {}),
    },
    cost === undefined ? {} : { cost },
  );
}

/**
 * Log lines for the events of an arm's pipeline (the same lines wherever the arm runs); `state` keeps what a
 * later line quotes.
 */
function logArmEvent(
  out: Console,
  name: string,
  event: ArmEvent,
  state: { surgeryAccuracy: number; reestimated: boolean },
): void {
  switch (event.phase) {
    case 'surgery':
      out.log(`${name}: ${event.strategy} rewrote ${event.rewritten} layers`);
      return;
    case 'surgery-evaluated':
      state.surgeryAccuracy = event.accuracy;
      out.log(`${name}: test accuracy after surgery ${percent(event.accuracy)}`);
      return;
    case 'batch-norm':
      state.reestimated = true;
      out.log(`${name}: ${describeReestimation(event)}`);
      out.log(
        `${name}: test accuracy after BatchNorm re-estimation ${percent(event.accuracy ?? 0)} ` +
          `(${percent(state.surgeryAccuracy)} after surgery); fine-tuning`,
      );
      return;
    case 'fine-tune':
      if (!state.reestimated)
        out.log(`${name}: BatchNorm statistics kept (fineTune.bnImages is 0); fine-tuning`);
      return;
    case 'measured':
      return;
  }
}

/** Saves an arm unit's model to `arms/<name>/model/` and writes its `result.json`. */
async function finishArm(
  ctx: Context,
  arm: ArmConfig,
  plan: ArmPlan,
  done: ArmUnitResult,
  armDir: string,
): Promise<ArmResult> {
  const modelDir = path.join(armDir, COMPARE_FILES.model);
  const model = await loadPackedModel(await ctx.executor.blobs.get(done.model));
  try {
    await saveModel(model, modelDir, done.plugins);
  } finally {
    model.dispose();
  }
  const { measured, surgery } = done;
  if (measured === null || surgery === null)
    throw new Error('an arm with data came back without its measurement');
  const result: ArmResult = {
    name: arm.name,
    strategy: done.strategy,
    plugin: done.plugin,
    config: arm,
    recipe: ctx.config.fineTune,
    baselineFingerprint: ctx.fingerprint,
    ...measured,
    rewritten: done.rewritten.map((r) => ({
      layer: r.layer,
      options: r.options,
      before: r.before,
      after: r.after,
    })),
    skipped: done.skipped,
    scan: plan.scan,
    scanWorkers: plan.scanWorkers,
    selection: plan.selection,
    surgeryAccuracy: surgery.accuracy,
    bnAccuracy: done.batchNorm?.accuracy ?? null,
    fineTune: done.fineTune ?? { epochs: [], steps: [] },
    seconds: { scan: plan.scanSeconds, ...done.seconds },
    modelDir,
    modelBytes: await weightBytes(modelDir),
  };
  // The model's blob is not deleted: the arm's completed job names it, and the queue's retention removes both.
  await writeJsonAtomic(path.join(armDir, COMPARE_FILES.result), result);
  return result;
}

/**
 * Resolves every arm's strategy and checks its options (with each scan ratio for a selecting arm) before any
 * work, so a typo in the last arm does not surface after an hour of training.
 *
 * @throws ConfigError naming the arm's field.
 */
async function resolveArms(arms: readonly ArmConfig[]): Promise<ResolvedStrategy[]> {
  const resolved: ResolvedStrategy[] = [];
  for (const [index, arm] of arms.entries()) {
    const found = await resolveStrategy(arm.strategy, `'arms.${index}.strategy'`);
    const variants = arm.select
      ? arm.select.ratios.map((ratio) => ({ ...arm.options, ratio }))
      : [arm.options];
    try {
      for (const options of variants) parseStrategyOptions(found.strategy, options);
    } catch (error) {
      if (!(error instanceof StrategyOptionsError)) throw error;
      throw new ConfigError([`'arms.${index}.options' (${arm.name}): ${error.message}`]);
    }
    resolved.push(found);
  }
  return resolved;
}

/**
 * `decompose compare`: one baseline (loaded, or trained with its recipe), then each arm compressed by core
 * surgery (`init: trained`, layers by glob or by a sensitivity selection), its BatchNorm statistics re-estimated
 * on `fineTune.bnImages` augmented training images (unless 0), fine-tuned with the same recipe and measured
 * (test accuracy, Δ vs baseline, params, MACs, measured train/eval img/s, weight bytes). Finished arms are kept
 * in `arms/<name>/result.json` and skipped by a re-run. The baseline training and the arms run as units on
 * `--queue`'s Redis queue, or in this process without it; an arm that fails for good is listed in `failed`.
 * Writes `report.md`, `results.json`, `results.csv`, the charts (SVG + PNG) and `run.log`.
 */
export async function runCompare(config: CompareConfig, out: Console): Promise<CompareResults> {
  const reportDir = path.resolve(config.reportDir, config.run);
  await ensureDirectory(reportDir);
  out.logTo(path.join(reportDir, COMPARE_FILES.log));
  const phases: Phase[] = [];
  try {
    out.log(`compare '${config.run}' into ${reportDir} (${new Date().toISOString()})`);
    const engine = await initEngine();
    for (const line of describeEngine(engine, out.verbose)) out.log(line);
    const strategies = await resolveArms(config.arms);
    // Before anything is read or written: an unreachable --queue is a typed error naming its URL.
    const executor = await openExecutor(queueAddress(config));
    try {
      return await compareOn(executor, config, strategies, reportDir, engine, phases, out);
    } finally {
      await executor.close();
    }
  } finally {
    out.logTo(null);
  }
}

/** The body of {@link runCompare}, with its executor open. */
async function compareOn(
  executor: Executor,
  config: CompareConfig,
  strategies: ResolvedStrategy[],
  reportDir: string,
  engine: Awaited<ReturnType<typeof initEngine>>,
  phases: Phase[],
  out: Console,
): Promise<CompareResults> {
  {
    const trained =
      config.baseline.modelDir === undefined
        ? null
        : await locateTrainedModel(config.baseline.modelDir, "'baseline.modelDir'");
    // An image folder is resized to the baseline's input size (a baseline trained here is a CIFAR ResNet).
    const modelInput = trained === null ? CIFAR10_IMAGE_SHAPE : await readModelInputShape(trained.modelDir);
    const data = await timed(phases, 'data', () => loadData(config, out, { modelInput }));
    checkTrainingBatch("'fineTune.batch'", config.fineTune.batch, data.train.count);
    const baseline = await prepareBaseline(config, trained, reportDir, data, out, phases, executor);
    try {
      const fingerprint = weightsFingerprint(baseline.model);
      const baselinePlugins = await modelPlugins(baseline.modelDir);
      const measured = await timed(phases, 'baseline measurement', () =>
        measureModel(baseline.model, data.test, {
          evalBatch: config.fineTune.batch,
          batch: config.measure.batch,
          steps: config.measure.steps,
          strategies: BUILT_IN_STRATEGIES,
        }),
      );
      const baselineResult: BaselineResult = {
        name: 'baseline',
        architecture: config.baseline.modelDir === undefined ? config.baseline.model : baseline.modelDir,
        ...measured,
        modelDir: baseline.modelDir,
        modelBytes: await weightBytes(baseline.modelDir),
        seed: baseline.seed,
        trainedHere: baseline.trainedHere,
        epochs: baseline.epochs,
      };
      out.log(`baseline: test accuracy ${percent(measured.accuracy)}, ${measured.params} params`);
      const ctx: Context = {
        config,
        reportDir,
        out,
        train: data.train,
        test: data.test,
        baseline: baseline.model,
        baselinePlugins,
        fingerprint,
        seed: baseline.seed,
        executor,
        queue: queueAddress(config),
        // Never deleted here: another coordinator on the same queue may use the same bytes (the same keys); the
        // queue's retention removes them once nobody used them for that long.
        blobs: {
          baseline: await executor.blobs.put(await packModel(baseline.model, baselinePlugins)),
          train: await executor.blobs.put(packImageSet(data.train)),
          test: await executor.blobs.put(packImageSet(data.test)),
        },
      };
      for (const [index, arm] of config.arms.entries()) {
        if (arm.layers) matchLayers(baseline.model, arm.layers, `'arms.${index}.layers'`);
      }
      const results_: (ArmResult | null)[] = config.arms.map(() => null);
      const reused = new Set<string>();
      const failed: FailedArm[] = [];
      // Finished arms are reused; the others are planned here (scan and selection) and run as one batch of
      // units: one after another on this thread, or side by side on the queue's workers.
      const pending: { index: number; arm: ArmConfig; plan: ArmPlan; armDir: string }[] = [];
      for (const [index, arm] of config.arms.entries()) {
        const armDir = path.join(reportDir, COMPARE_FILES.arms, arm.name);
        const file = path.join(armDir, COMPARE_FILES.result);
        const earlier = await finishedArm(file, arm, config.fineTune, fingerprint, index);
        if (earlier) {
          out.log(`arm ${index + 1}/${config.arms.length} '${arm.name}': finished earlier, reusing ${file}`);
          results_[index] = earlier;
          reused.add(arm.name);
          continue;
        }
        out.log(`arm ${index + 1}/${config.arms.length} '${arm.name}': ${arm.strategy}`);
        pending.push({ index, arm, plan: await planArm(ctx, arm, index, strategies[index]!), armDir });
      }
      const states = pending.map(() => ({ surgeryAccuracy: 0, reestimated: false }));
      const draw = pending.map(({ arm }, i) =>
        unitProgress(config.fineTune.batch, out, (event) => logArmEvent(out, arm.name, event, states[i]!)),
      );
      const saving: Promise<void>[] = [];
      const fail = (arm: ArmConfig, error: { name: string; message: string }) => {
        out.log(`arm '${arm.name}': failed: ${error.name}: ${error.message}`);
        failed.push({
          name: arm.name,
          strategy: arm.strategy,
          error: { name: error.name, message: error.message },
        });
      };
      const units = [];
      for (const { arm, plan, index } of pending)
        units.push(await armUnitOf(ctx, arm, strategies[index]!, plan));
      await executor.run(units, {
        onProgress: (i, progress) => draw[i]!(progress),
        // Each arm is written as it finishes, so a coordinator stopped later keeps it.
        onResult: (i, outcome) => {
          const { index, arm, plan, armDir } = pending[i]!;
          if (!outcome.ok) {
            fail(arm, outcome.error);
            return;
          }
          saving.push(
            finishArm(ctx, arm, plan, outcome.result, armDir).then(
              (result) => {
                results_[index] = result;
                out.log(
                  `arm '${arm.name}': test accuracy ${percent(result.accuracy)} ` +
                    `(${(100 * (result.accuracy - measured.accuracy)).toFixed(1)} pp vs baseline), ${result.params} params`,
                );
              },
              (error: unknown) => fail(arm, error instanceof Error ? error : new Error(String(error))),
            ),
          );
        },
      });
      await Promise.all(saving);
      // In the config's order, whatever order they finished in.
      failed.sort(
        (x, y) =>
          config.arms.findIndex((a) => a.name === x.name) - config.arms.findIndex((a) => a.name === y.name),
      );
      const arms = results_.filter((r): r is ArmResult => r !== null);
      for (const arm of arms) {
        const note = reused.has(arm.name) ? { note: 'from the earlier run that computed it' } : {};
        for (const [phase, seconds] of Object.entries(arm.seconds)) {
          if (phase === 'scan' && arm.scan === null) continue;
          if (phase === 'batchNorm' && arm.bnAccuracy === null) continue;
          phases.push({
            phase: `${arm.name}: ${phaseNames[phase as keyof typeof phaseNames]}`,
            seconds,
            ...note,
          });
        }
      }
      const rows: ArmRow[] = arms.map((arm) => ({
        ...arm,
        deltaAccuracy: arm.accuracy - measured.accuracy,
        paramsRatio: arm.params / measured.params,
        macsRatio: arm.forwardMacs / measured.forwardMacs,
      }));
      const results: CompareResults = {
        run: config.run,
        createdAt: new Date().toISOString(),
        reportDir,
        machine: machineInfo(engine),
        data: dataRecord(data),
        recipe: { baseline: config.baseline, fineTune: config.fineTune, measure: config.measure },
        baseline: baselineResult,
        arms: rows,
        failed,
        phases,
      };
      await timed(phases, 'report', () => writeCompareReport(results, reportDir, out));
      await writeJsonAtomic(path.join(reportDir, COMPARE_FILES.results), results);
      return results;
    } finally {
      baseline.model.dispose();
    }
  }
}
