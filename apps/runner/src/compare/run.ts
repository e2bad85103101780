import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CIFAR10_IMAGE_SHAPE, type Cifar10Images } from '@decompose/cifar10';
import {
  applyStrategy,
  type DecompositionStrategy,
  parseStrategyOptions,
  StrategyOptionsError,
} from '@decompose/core';
import { initEngine } from '@decompose/engine';
import {
  BUILT_IN_LAYER_MODULES,
  BUILT_IN_STRATEGIES,
  loadModel,
  modelPlugins,
  type ResolvedStrategy,
  readModelInputShape,
  resolveStrategy,
  saveModel,
} from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import type { SensitivityTable } from '@decompose/sensitivity';
import { evaluate, modelGeometry, readMetrics, train } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { describeReestimation, reestimateOnTrainingImages } from '../batch-norm.js';
import { checkTrainingBatch } from '../config.js';
import { dataRecord, type LoadedData, loadData } from '../data.js';
import { describeEngine } from '../engine-report.js';
import { ConfigError } from '../errors.js';
import { ensureDirectory, writeAtomic, writeJsonAtomic } from '../files.js';
import type { Console } from '../progress.js';
import { machineInfo } from '../report/machine.js';
import { formatSelection } from '../report/selection.js';
import { calibrationSplit, select } from '../sensitivity/command.js';
import { matchLayers, runScan, scanWorkerCount, weightsFingerprint } from '../sensitivity/scan.js';
import { locateTrainedModel, type TrainedModel } from '../sensitivity/trained.js';
import { percent, trainOptions } from '../train.js';
import { type ArmConfig, type CompareConfig, calibrationCount, type Recipe } from './config.js';
import { measureModel, weightBytes } from './measure.js';
import { writeCompareReport } from './report.js';
import {
  type ArmResult,
  type ArmRow,
  type BaselineResult,
  COMPARE_FILES,
  type CompareResults,
  type Phase,
  type StepLoss,
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
): Promise<{ model: tfl.LayersModel; modelDir: string; seed: number; trainedHere: boolean }> {
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
    return { model, modelDir: trained.modelDir, seed, trainedHere: false };
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
    return { model: await loadModel(modelDir), modelDir, seed: b.seed, trainedHere: true };
  }
  const trainData =
    heldOut === null
      ? data.train
      : calibrationSplit(data.train, heldOut, b.seed, "'arms.select.calibration'").rest;
  checkTrainingBatch("'baseline.batch'", b.batch, trainData.count);
  const model = createCifarResNet({ arch: b.model, shortcut: b.shortcut, init: b.init, seed: b.seed });
  try {
    out.log(
      `baseline: training ${b.model} for ${b.epochs} epochs (lr ${b.lr}, ${b.schedule}) on ${trainData.count} images` +
        (heldOut === null ? '' : ` (${heldOut} held out for the sensitivity scans)`),
    );
    await timed(phases, 'baseline training', async () => {
      await train({
        ...trainOptions(b, { model, trainData, evalData: data.test, epochs: b.epochs }, out),
        checkpointDir: path.join(dir, COMPARE_FILES.checkpoints),
        resume: true,
      });
      await saveModel(model, modelDir);
      await writeAtomic(recipeFile, JSON.stringify(recipe));
    });
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, modelDir, seed: b.seed, trainedHere: true };
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

/** Scan, surgery, fine-tune and measurement of one arm; writes `arms/<name>/result.json` and its model. */
async function runArm(
  ctx: Context,
  arm: ArmConfig,
  index: number,
  { strategy, plugin }: ResolvedStrategy,
  armDir: string,
): Promise<ArmResult> {
  const { config, out } = ctx;
  const recipe = config.fineTune;
  const seconds = { scan: 0, surgery: 0, batchNorm: 0, fineTune: 0, measure: 0 };
  const clock = async <T>(phase: keyof typeof seconds, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } finally {
      seconds[phase] += (performance.now() - started) / 1000;
    }
  };

  let scan: SensitivityTable | null = null;
  let scanWorkers: number | null = null;
  let selection: ArmResult['selection'] = null;
  if (arm.select !== undefined) {
    const s = arm.select;
    // As many threads as the arm's fine-tune, which runs right after the scan.
    const workers = s.workers ?? recipe.workers;
    scan = await clock('scan', async () => {
      const { calibration, rest } = calibrationSplit(
        ctx.train,
        s.calibration,
        ctx.seed,
        `'arms.${index}.select.calibration'`,
      );
      return runScan(
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
        },
        out,
      );
    });
    scanWorkers = scanWorkerCount({ ...s, workers }, scan.layers.length);
    selection = select(scan, s.budget, s.selector, s.metric);
    for (const line of formatSelection(selection)) out.log(line);
  }

  const surgery = await clock('surgery', async () =>
    applyStrategy(ctx.baseline, strategy, {
      layers: selection ? selection.choices.map((c) => c.layer) : arm.layers, // none: core's default, every layer the strategy supports
      options: arm.options,
      perLayerOptions: selection
        ? Object.fromEntries(selection.choices.map((c) => [c.layer, c.options]))
        : undefined,
      init: 'trained',
      seed: recipe.seed,
    }),
  );
  const model = surgery.model;
  try {
    out.log(`${arm.name}: ${strategy.name} rewrote ${surgery.report.length} layers`);
    const strategies: DecompositionStrategy[] = [...BUILT_IN_STRATEGIES, ...(plugin ? [strategy] : [])];
    const surgeryAccuracy = (await clock('surgery', () => evaluate(model, ctx.test, recipe.batch))).accuracy;
    out.log(`${arm.name}: test accuracy after surgery ${percent(surgeryAccuracy)}`);
    let bnAccuracy: number | null = null;
    if (recipe.bnImages > 0) {
      bnAccuracy = await clock('batchNorm', async () => {
        const done = reestimateOnTrainingImages(model, ctx.train, {
          images: recipe.bnImages,
          batch: recipe.batch,
          seed: recipe.seed,
        });
        out.log(`${arm.name}: ${describeReestimation(done)}`);
        return (await evaluate(model, ctx.test, recipe.batch)).accuracy;
      });
      out.log(
        `${arm.name}: test accuracy after BatchNorm re-estimation ${percent(bnAccuracy)} ` +
          `(${percent(surgeryAccuracy)} after surgery); fine-tuning`,
      );
    } else {
      out.log(`${arm.name}: BatchNorm statistics kept (fineTune.bnImages is 0); fine-tuning`);
    }

    const checkpointDir = path.join(armDir, COMPARE_FILES.checkpoints);
    const steps: StepLoss[] = [];
    await clock('fineTune', async () => {
      const options = trainOptions(
        recipe,
        { model, trainData: ctx.train, evalData: ctx.test, epochs: recipe.epochs },
        out,
      );
      await train({
        ...options,
        onStep: (p) => {
          options.onStep?.(p);
          steps.push({ step: p.globalStep, loss: p.loss });
        },
        checkpointDir,
        resume: true,
        workerOptions: {
          setupModules: [...BUILT_IN_LAYER_MODULES, ...ctx.baselinePlugins, ...(plugin ? [plugin] : [])],
          resolveFrom: new URL('.', import.meta.url),
        },
      });
    });

    const modelDir = path.join(armDir, COMPARE_FILES.model);
    const measured = await clock('measure', async () => {
      const m = await measureModel(model, ctx.test, {
        evalBatch: recipe.batch,
        batch: config.measure.batch,
        steps: config.measure.steps,
        strategies,
      });
      await saveModel(model, modelDir, [...new Set([...ctx.baselinePlugins, ...(plugin ? [plugin] : [])])]);
      return m;
    });
    const result: ArmResult = {
      name: arm.name,
      strategy: strategy.name,
      plugin,
      config: arm,
      recipe,
      baselineFingerprint: ctx.fingerprint,
      ...measured,
      rewritten: surgery.report.map((r) => ({
        layer: r.layer,
        options: r.options,
        before: r.before,
        after: r.after,
      })),
      skipped: surgery.skipped,
      scan,
      scanWorkers,
      selection,
      surgeryAccuracy,
      bnAccuracy,
      fineTune: { epochs: await readMetrics(checkpointDir), steps },
      seconds,
      modelDir,
      modelBytes: await weightBytes(modelDir),
    };
    await writeJsonAtomic(path.join(armDir, COMPARE_FILES.result), result);
    return result;
  } finally {
    model.dispose();
  }
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
 * in `arms/<name>/result.json` and skipped by a re-run; a half fine-tuned arm resumes from its checkpoint.
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
    const trained =
      config.baseline.modelDir === undefined
        ? null
        : await locateTrainedModel(config.baseline.modelDir, "'baseline.modelDir'");
    // An image folder is resized to the baseline's input size (a baseline trained here is a CIFAR ResNet).
    const modelInput = trained === null ? CIFAR10_IMAGE_SHAPE : await readModelInputShape(trained.modelDir);
    const data = await timed(phases, 'data', () => loadData(config, out, { modelInput }));
    checkTrainingBatch("'fineTune.batch'", config.fineTune.batch, data.train.count);
    const baseline = await prepareBaseline(config, trained, reportDir, data, out, phases);
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
        epochs: baseline.trainedHere
          ? await readMetrics(path.join(reportDir, COMPARE_FILES.baseline, COMPARE_FILES.checkpoints))
          : [],
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
      };
      for (const [index, arm] of config.arms.entries()) {
        if (arm.layers) matchLayers(baseline.model, arm.layers, `'arms.${index}.layers'`);
      }
      const arms: ArmResult[] = [];
      const reused = new Set<string>();
      for (const [index, arm] of config.arms.entries()) {
        const armDir = path.join(reportDir, COMPARE_FILES.arms, arm.name);
        const file = path.join(armDir, COMPARE_FILES.result);
        const earlier = await finishedArm(file, arm, config.fineTune, fingerprint, index);
        if (earlier) {
          out.log(`arm ${index + 1}/${config.arms.length} '${arm.name}': finished earlier, reusing ${file}`);
          arms.push(earlier);
          reused.add(arm.name);
          continue;
        }
        out.log(`arm ${index + 1}/${config.arms.length} '${arm.name}': ${arm.strategy}`);
        const result = await runArm(ctx, arm, index, strategies[index]!, armDir);
        out.log(
          `arm '${arm.name}': test accuracy ${percent(result.accuracy)} ` +
            `(${(100 * (result.accuracy - measured.accuracy)).toFixed(1)} pp vs baseline), ${result.params} params`,
        );
        arms.push(result);
      }
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
        phases,
      };
      await timed(phases, 'report', () => writeCompareReport(results, reportDir, out));
      await writeJsonAtomic(path.join(reportDir, COMPARE_FILES.results), results);
      return results;
    } finally {
      baseline.model.dispose();
    }
  } finally {
    out.logTo(null);
  }
}
