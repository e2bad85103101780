import path from 'node:path';
import { CIFAR10_IMAGE_SHAPE } from '@decompose/cifar10';
import { costTable, type LayerReplacement, type LayerSelection, type SkippedLayer } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import {
  BUILT_IN_STRATEGIES,
  describeReestimation,
  loadModel,
  modelPlugins,
  readModelInputShape,
  resolveStrategy,
  runArmPipeline,
  saveModel,
  selectionPlan,
  type TestFigures,
} from '@decompose/pipeline';
import { evaluate, modelGeometry } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { type CompressConfig, checkTrainingBatch } from './config.js';
import { loadData } from './data.js';
import { describeEngine } from './engine-report.js';
import { ConfigError } from './errors.js';
import { jsonText, readConfigFile, stageFile } from './files.js';
import type { Console } from './progress.js';
import { formatCount, formatTable } from './table.js';
import { percent, plural, trainingProgress } from './train.js';

/** Parameters, per-image forward MACs and test accuracy of a model (accuracy and loss null without data). */
export interface ModelFigures {
  params: number;
  forwardMacs: number;
  accuracy: number | null;
  loss: number | null;
}

/** What `decompose compress` writes to `<out>/summary.json`. */
export interface CompressSummary {
  config: CompressConfig;
  strategy: string;
  /** Layers rewritten, with their options and per-layer costs. */
  report: LayerReplacement[];
  skipped: SkippedLayer[];
  before: ModelFigures;
  /** Right after surgery, with the BatchNorm statistics of the model before it. */
  compressed: ModelFigures;
  /** After re-estimating the BatchNorm statistics on `config.bnImages` training images; null when that is 0. */
  reestimated: ModelFigures | null;
  /** After fine-tuning (which starts from the re-estimated model); null without it. */
  fineTuned: ModelFigures | null;
  modelDir: string;
}

/** The part of a selection file (`decompose sensitivity`'s output) that compress uses. */
const selectionFileSchema = z.object({
  choices: z.array(z.object({ layer: z.string(), options: z.unknown() })),
});

function strategyOptions(config: CompressConfig): unknown {
  if (config.ratio !== undefined) return { ratio: config.ratio };
  if (typeof config.options !== 'string') return config.options;
  try {
    return JSON.parse(config.options);
  } catch (error) {
    throw new ConfigError([
      `--options: got ${JSON.stringify(config.options)}; expected a JSON object, e.g. '{"ratio":0.5}' (${(error as Error).message})`,
    ]);
  }
}

async function perLayerOptions(
  selectionFile: string | undefined,
): Promise<Record<string, unknown> | undefined> {
  if (selectionFile === undefined) return undefined;
  const parsed = selectionFileSchema.safeParse(await readConfigFile(selectionFile));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError([
      `--selection: ${selectionFile} at '${issue?.path.join('.') ?? ''}': ${issue?.message}; expected a selection ` +
        "as written by 'decompose sensitivity' ({ choices: [{ layer, options }, ...] })",
    ]);
  }
  return selectionPlan(parsed.data).perLayerOptions;
}

/**
 * The `--layers` names or globs; without them core's default: the choices of a selection file (passed as
 * `perLayerOptions`), else every layer the strategy supports (convolutions and Dense layers alike).
 */
function layerSelection(config: CompressConfig): LayerSelection | undefined {
  if (config.layers === undefined) return undefined;
  return typeof config.layers === 'string' ? config.layers.split(',').map((s) => s.trim()) : config.layers;
}

/**
 * `decompose compress`: rewrites a saved model's layers (by default every one the strategy supports,
 * convolutions and Dense layers) with one strategy, re-estimates its BatchNorm
 * statistics on augmented training images (unless `bnImages` is 0), optionally fine-tunes the result, saves it
 * to `<out>/model/` and reports parameters, MACs and test accuracy before, after surgery, after the
 * re-estimation and after fine-tuning. Without data (no `--data` or `--download`, and a model whose input is
 * not CIFAR-10's), it rewrites and saves the model alone, and says so: no re-estimation, fine-tuning or accuracy.
 */
export async function runCompress(config: CompressConfig, out: Console): Promise<CompressSummary> {
  const engine = await initEngine();
  for (const line of describeEngine(engine, out.verbose)) out.log(line);
  // Resolved here as well as in the pipeline, so a bad --strategy names its flag before any data is read.
  const { strategy, plugin } = await resolveStrategy(config.strategy, '--strategy');
  const options = strategyOptions(config);
  const perLayer = await perLayerOptions(config.selection);
  const modelDir = path.resolve(config.modelDir);
  const modelInput = await readModelInputShape(modelDir);
  // A model of other inputs than CIFAR-10's, and no data given: compress the weights alone.
  const withoutData =
    config.data === undefined &&
    !config.download &&
    modelInput !== undefined &&
    modelInput.join() !== CIFAR10_IMAGE_SHAPE.join();
  if (withoutData && config.fineTuneEpochs > 0) {
    throw new ConfigError([
      `--fine-tune-epochs: got ${config.fineTuneEpochs}; fine-tuning needs training images, and the model takes ` +
        `[${modelInput.join(', ')}] inputs, not CIFAR-10's [32, 32, 3]: pass --data <image folder> of its input size and ` +
        'classes, or drop --fine-tune-epochs',
    ]);
  }
  const data = withoutData ? null : await loadData(config, out, { modelInput });
  if (withoutData) {
    out.log(
      `no data: the model takes [${modelInput.join(', ')}] inputs, not CIFAR-10's [32, 32, 3], and no --data was given, ` +
        'so there is no BatchNorm re-estimation, no fine-tuning and no accuracy; pass --data <image folder> for them',
    );
  }
  if (data && config.fineTuneEpochs > 0) checkTrainingBatch('--batch', config.batch, data.train.count);
  const baselinePlugins = await modelPlugins(modelDir);
  const original = await loadModel(modelDir);
  let compressed: tfl.LayersModel | null = null;
  try {
    // A model built for other images than the data's is refused before the surgery, naming both.
    if (data) modelGeometry(original, data.test, data.name);
    const outDir = path.resolve(config.out);
    const progress = trainingProgress(config.batch, out);
    // Compress is an arm without a scan: the one arm pipeline, in this thread, with no throughput measurement.
    const arm = await runArmPipeline(
      {
        baseline: original,
        baselinePlugins,
        strategy: config.strategy,
        layers: layerSelection(config),
        options,
        perLayerOptions: perLayer,
        init: config.initFrom,
        seed: config.seed,
        recipe: { ...config, epochs: data ? config.fineTuneEpochs : 0, bnImages: config.bnImages },
        data: data && { train: data.train, test: data.test },
      },
      {
        checkpointDir: path.join(outDir, 'fine-tune'),
        resume: false,
        resolveFrom: new URL('.', import.meta.url),
        ...progress,
        onEvent: (event) => {
          if (event.phase === 'surgery') {
            out.log(
              `${event.strategy}: rewrote ${event.rewritten} layers` +
                (event.skipped > 0
                  ? ` (${event.skipped} matched but left as they are: see summary.json)`
                  : ''),
            );
          } else if (event.phase === 'batch-norm') {
            out.log(describeReestimation(event));
          } else if (event.phase === 'fine-tune') {
            out.log(`fine-tuning for ${plural(event.epochs, 'epoch')}`);
          }
        },
      },
    );
    compressed = arm.model;
    const figuresOf = (evaluation: TestFigures | null): ModelFigures => ({
      ...arm.cost,
      accuracy: evaluation?.accuracy ?? null,
      loss: evaluation?.loss ?? null,
    });
    const cost = costTable(original, {
      strategies: BUILT_IN_STRATEGIES.concat(plugin ? [strategy] : []),
    }).total;
    const evaluated = data ? await evaluate(original, data.test, config.batch) : null;
    const before: ModelFigures = {
      params: cost.params,
      forwardMacs: cost.forwardMacs,
      accuracy: evaluated?.accuracy ?? null,
      loss: evaluated?.loss ?? null,
    };
    const savedDir = path.join(outDir, 'model');
    const summary: CompressSummary = {
      config,
      strategy: arm.strategy,
      report: arm.rewritten,
      skipped: arm.skipped,
      before,
      compressed: figuresOf(arm.surgery),
      reestimated: arm.batchNorm && figuresOf(arm.batchNorm),
      fineTuned: arm.fineTuned && figuresOf(arm.fineTuned),
      modelDir: savedDir,
    };
    // The summary is written before the model and put in place after it: a failure leaves neither behind.
    const summaryFile = await stageFile(path.join(outDir, 'summary.json'), jsonText(summary));
    try {
      await saveModel(compressed, savedDir, arm.plugins);
    } catch (error) {
      await summaryFile.discard();
      throw error;
    }
    await summaryFile.commit();
    for (const line of formatCompress(summary)) out.result(line);
    return summary;
  } finally {
    original.dispose();
    compressed?.dispose();
  }
}

/** The before/after table of a compress run. */
export function formatCompress(summary: CompressSummary): string[] {
  const row = (label: string, f: ModelFigures) => [
    label,
    formatCount(f.params),
    formatCount(f.forwardMacs),
    f.accuracy === null ? '—' : percent(f.accuracy),
    f.loss === null ? '—' : f.loss.toFixed(4),
  ];
  return [
    ...formatTable(
      [
        { heading: 'model' },
        { heading: 'params', align: 'right' },
        { heading: 'MACs', align: 'right' },
        { heading: 'test acc', align: 'right' },
        { heading: 'test loss', align: 'right' },
      ],
      [
        row('original', summary.before),
        row(`${summary.strategy}`, summary.compressed),
        ...(summary.reestimated
          ? [row(`${summary.strategy} + BatchNorm re-estimated`, summary.reestimated)]
          : []),
        ...(summary.fineTuned ? [row(`${summary.strategy} + fine-tune`, summary.fineTuned)] : []),
      ],
    ),
    `saved to ${summary.modelDir}`,
  ];
}
