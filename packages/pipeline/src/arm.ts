import { type Cifar10Images, createBatchStream } from '@decompose/cifar10';
import {
  applyStrategy,
  costTable,
  type DecompositionStrategy,
  type InitMode,
  type LayerReplacement,
  type LayerSelection,
  type SkippedLayer,
} from '@decompose/core';
import {
  type EpochMetrics,
  evaluate,
  modelGeometry,
  readMetrics,
  type StepProgress,
  train,
} from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { reestimateOnTrainingImages } from './batch-norm.js';
import { type ModelMeasurement, measureModel, trainImagesPerSecond } from './measure.js';
import { BUILT_IN_LAYER_MODULES, BUILT_IN_STRATEGIES, resolveStrategy } from './strategies.js';
import { sgdSettingsSchema, trainOptions } from './training.js';

/**
 * What an arm does after its surgery: BatchNorm re-estimation on `bnImages` augmented training images (0 keeps
 * the baseline's statistics), then `epochs` of fine-tuning (0: none) with the SGD settings.
 */
export const armRecipeSchema = sgdSettingsSchema.extend({
  epochs: z.number().int().min(0),
  bnImages: z.number().int().min(0),
});
/** See {@link armRecipeSchema}. */
export type ArmRecipe = z.output<typeof armRecipeSchema>;

/** What {@link runArmPipeline} takes: everything an arm is a function of. */
export interface ArmPipelineInput {
  /** The trained model to compress (left untouched). */
  baseline: tfl.LayersModel;
  /** Plugins the baseline's layers come from (importable specifiers), for gradient workers and the saved model. */
  baselinePlugins?: readonly string[];
  /** A built-in strategy name or a plugin specifier (see `resolveStrategy`). */
  strategy: string;
  /** Layers to rewrite; default: the names of `perLayerOptions`, else every layer the strategy supports. */
  layers?: LayerSelection;
  /** The strategy's options for every rewritten layer. */
  options?: unknown;
  /** A per-layer plan (e.g. a sensitivity selection's ratio per layer), merged over `options`. */
  perLayerOptions?: Readonly<Record<string, unknown>>;
  /** How the replacements start (default `trained`). */
  init?: InitMode;
  /** Seed of the surgery (each layer's seed derives from it). */
  seed: number;
  recipe: ArmRecipe;
  /** Training and test images; null compresses the weights alone (no re-estimation, fine-tune or accuracy). */
  data: { train: Cifar10Images; test: Cifar10Images } | null;
  /** Timed throughput steps and their batch at the end (see `measureModel`); null or absent: not measured. */
  measure?: { batch: number; steps: number } | null;
}

/** Progress of an arm, as plain data (it travels as a unit's progress through a queue). */
export type ArmEvent =
  | { phase: 'surgery'; strategy: string; rewritten: number; skipped: number }
  | { phase: 'surgery-evaluated'; accuracy: number }
  | { phase: 'batch-norm'; layers: number; images: number; accuracy: number | null }
  | { phase: 'fine-tune'; epochs: number }
  | { phase: 'measured'; accuracy: number };

/** Where {@link runArmPipeline} reports and keeps its fine-tune's checkpoints. */
export interface ArmPipelineIO {
  onEvent?(event: ArmEvent): void;
  /** After every fine-tune step. */
  onStep?(progress: StepProgress): void;
  /** After every fine-tune epoch. */
  onEpoch?(metrics: EpochMetrics): void;
  /** The fine-tune's checkpoint folder (without it, nothing is written). */
  checkpointDir?: string;
  /** Resume the fine-tune from the newest checkpoint in `checkpointDir`. */
  resume?: boolean;
  signal?: AbortSignal;
  /**
   * Where gradient workers resolve the setup modules (built-in layer modules and plugins) from; default this
   * package, which depends on every built-in strategy.
   */
  resolveFrom?: URL;
}

/** Fine-tune training curve: running mean loss within the epoch after each optimizer step. */
export interface StepLoss {
  step: number;
  loss: number;
}

/** Test loss and accuracy of a model (no timings: they would make equal arms differ). */
export interface TestFigures {
  accuracy: number;
  loss: number;
}

async function testFigures(model: tfl.LayersModel, test: Cifar10Images, batch: number): Promise<TestFigures> {
  const { accuracy, loss } = await evaluate(model, test, batch);
  return { accuracy, loss };
}

/** Wall-clock seconds of an arm's phases. */
export interface ArmPhaseSeconds {
  surgery: number;
  /** Re-estimating the BatchNorm statistics and evaluating the result (0 when `recipe.bnImages` is 0). */
  batchNorm: number;
  fineTune: number;
  measure: number;
}

/** What {@link runArmPipeline} returns. */
export interface ArmPipelineResult {
  /** The compressed (re-estimated, fine-tuned) model; the caller disposes it. */
  model: tfl.LayersModel;
  /** The strategy's name, and its plugin specifier (null for a built-in one). */
  strategy: string;
  plugin: string | null;
  /** Plugins the compressed model needs to load: the baseline's and the strategy's. */
  plugins: string[];
  rewritten: LayerReplacement[];
  skipped: SkippedLayer[];
  /** Cost table totals of the compressed model (re-estimation and fine-tuning do not change them). */
  cost: { params: number; forwardMacs: number };
  /** Test figures right after surgery, with the baseline's BatchNorm statistics; null without data. */
  surgery: TestFigures | null;
  /** After the re-estimation; null without data or when `bnImages` is 0. */
  batchNorm: (TestFigures & { layers: number; images: number }) | null;
  /** After the fine-tune; null without data or fine-tune epochs. */
  fineTuned: TestFigures | null;
  /** The fine-tune's epochs (those before a resume included) and step losses; null without a fine-tune. */
  fineTune: { epochs: EpochMetrics[]; steps: StepLoss[] } | null;
  /** The measurement at the end; null without data or `measure`. */
  measured: ModelMeasurement | null;
  seconds: ArmPhaseSeconds;
}

/**
 * The arm pipeline, the one every command runs (`compress`, each arm of `compare`, the `arm` unit): surgery of
 * `baseline` with the strategy, test accuracy, BatchNorm re-estimation on augmented training images, fine-tune,
 * measurement. Deterministic by its seeds, so the same input gives the same numbers on any executor.
 *
 * @throws the strategy's and core's errors for bad options or layers (before any evaluation), and train's for a
 *   bad recipe.
 */
export async function runArmPipeline(
  input: ArmPipelineInput,
  io: ArmPipelineIO = {},
): Promise<ArmPipelineResult> {
  const { recipe, data } = input;
  const { strategy, plugin } = await resolveStrategy(input.strategy, "the arm's strategy");
  const seconds: ArmPhaseSeconds = { surgery: 0, batchNorm: 0, fineTune: 0, measure: 0 };
  const clock = async <T>(phase: keyof ArmPhaseSeconds, run: () => Promise<T> | T): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } finally {
      seconds[phase] += (performance.now() - started) / 1000;
    }
  };
  // Surgery before the first evaluation: a bad selection, options or weights are refused without a wait.
  const surgery = await clock('surgery', () =>
    applyStrategy(input.baseline, strategy, {
      layers: input.layers,
      options: input.options,
      perLayerOptions: input.perLayerOptions,
      init: input.init ?? 'trained',
      seed: input.seed,
    }),
  );
  const model = surgery.model;
  try {
    io.onEvent?.({
      phase: 'surgery',
      strategy: strategy.name,
      rewritten: surgery.report.length,
      skipped: surgery.skipped.length,
    });
    const strategies: DecompositionStrategy[] = [...BUILT_IN_STRATEGIES, ...(plugin ? [strategy] : [])];
    const total = costTable(model, { strategies }).total;
    const plugins = [...new Set([...(input.baselinePlugins ?? []), ...(plugin ? [plugin] : [])])];
    const result: ArmPipelineResult = {
      model,
      strategy: strategy.name,
      plugin,
      plugins,
      rewritten: surgery.report,
      skipped: surgery.skipped,
      cost: { params: total.params, forwardMacs: total.forwardMacs },
      surgery: null,
      batchNorm: null,
      fineTuned: null,
      fineTune: null,
      measured: null,
      seconds,
    };
    if (data === null) return result;

    result.surgery = await clock('surgery', () => testFigures(model, data.test, recipe.batch));
    io.onEvent?.({ phase: 'surgery-evaluated', accuracy: result.surgery.accuracy });
    if (recipe.bnImages > 0) {
      result.batchNorm = await clock('batchNorm', async () => {
        const done = reestimateOnTrainingImages(model, data.train, {
          images: recipe.bnImages,
          batch: recipe.batch,
          seed: recipe.seed,
        });
        const figures = await testFigures(model, data.test, recipe.batch);
        return { ...figures, layers: done.layers.length, images: done.images };
      });
      io.onEvent?.({ phase: 'batch-norm', ...result.batchNorm });
    }

    if (recipe.epochs > 0) {
      io.onEvent?.({ phase: 'fine-tune', epochs: recipe.epochs });
      const steps: StepLoss[] = [];
      const history = await clock('fineTune', async () => {
        const done = await train({
          ...trainOptions(recipe, {
            model,
            trainData: data.train,
            evalData: data.test,
            epochs: recipe.epochs,
          }),
          onStep: (p) => {
            steps.push({ step: p.globalStep, loss: p.loss });
            io.onStep?.(p);
          },
          onEpoch: io.onEpoch,
          checkpointDir: io.checkpointDir,
          resume: io.resume ?? false,
          signal: io.signal,
          workerOptions: {
            setupModules: [...BUILT_IN_LAYER_MODULES, ...plugins],
            resolveFrom: io.resolveFrom ?? new URL('.', import.meta.url),
          },
        });
        // Every epoch, those before a resume included, from the checkpoint folder's record when there is one.
        return io.checkpointDir === undefined ? done.history : await readMetrics(io.checkpointDir);
      });
      result.fineTune = { epochs: history, steps };
    }

    if (input.measure) {
      const { batch, steps } = input.measure;
      result.measured = await clock('measure', () =>
        measureModel(model, data.test, { evalBatch: recipe.batch, batch, steps, strategies }),
      );
      io.onEvent?.({ phase: 'measured', accuracy: result.measured.accuracy });
      if (recipe.epochs > 0)
        result.fineTuned = { accuracy: result.measured.accuracy, loss: result.measured.loss };
    } else if (recipe.epochs > 0) {
      result.fineTuned = await testFigures(model, data.test, recipe.batch);
    }
    return result;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** What {@link estimateArmSeconds} takes: an arm's surgery and recipe, and the images it fine-tunes on. */
export type ArmEstimateInput = Omit<ArmPipelineInput, 'data' | 'measure' | 'baselinePlugins' | 'recipe'> & {
  recipe: Pick<ArmRecipe, 'epochs' | 'batch'>;
  train: Cifar10Images;
};

/**
 * An estimate of an arm's fine-tune in seconds on this process's backend: the arm's surgery, then `steps` timed
 * gradient computations of the model it makes on one batch of the recipe's size, scaled to the recipe's epochs.
 * Used as the arm unit's cost, so that executors start the longest arms first. It is measured because MACs rank
 * arms wrongly: a Tucker layer is three stock convolutions, more passes over memory per multiply-add.
 */
export async function estimateArmSeconds(input: ArmEstimateInput, steps = 2): Promise<number> {
  const { strategy } = await resolveStrategy(input.strategy, "the arm's strategy");
  const { model } = applyStrategy(input.baseline, strategy, {
    layers: input.layers,
    options: input.options,
    perLayerOptions: input.perLayerOptions,
    init: input.init ?? 'trained',
    seed: input.seed,
  });
  try {
    const { numClasses } = modelGeometry(model, input.train);
    const [first] = createBatchStream(input.train, { batchSize: input.recipe.batch, shuffle: false }).epoch(
      0,
    );
    if (first === undefined) throw new RangeError('estimateArmSeconds needs at least one training image');
    const perSecond = await trainImagesPerSecond(model, first, steps, numClasses);
    return (input.recipe.epochs * input.train.count) / perSecond;
  } finally {
    model.dispose();
  }
}
