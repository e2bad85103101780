import type { LayerReplacement } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import { blobIdSchema, defineUnitKind } from '@decompose/jobs';
import { z } from 'zod';
import { armRecipeSchema, runArmPipeline } from '../arm.js';
import { loadPackedModel, packModel, unpackModel } from '../models.js';
import { checkpointDirSchema, withCheckpointFolder } from './checkpoint-folder.js';
import {
  dataBlobsSchema,
  epochMetricsSchema,
  epochProgress,
  readImageSets,
  resumedProgress,
  stepProgress,
} from './shared.js';

const figuresSchema = z.object({ accuracy: z.number(), loss: z.number() });
/** The fine-tune's running mean loss after each step, as `runArmPipeline` reports it. */
const stepLossesSchema = z.array(z.object({ step: z.number().int(), loss: z.number() }));

/** The input of an {@link armUnit}. */
export const armUnitInputSchema = z.object({
  /** Blob id of the packed baseline (`packModel`, with its plugins). */
  baseline: blobIdSchema,
  /** A built-in strategy name, or a plugin specifier every worker can import (a package name or absolute path). */
  strategy: z.string().min(1),
  /** Layer names or globs; absent: the names of `perLayerOptions`, else every layer the strategy supports. */
  layers: z.union([z.string(), z.array(z.string())]).optional(),
  options: z.record(z.string(), z.unknown()).default({}),
  /** A per-layer plan (a sensitivity selection's options per layer). */
  perLayerOptions: z.record(z.string(), z.unknown()).optional(),
  init: z.enum(['trained', 'scratch']).default('trained'),
  /** Seed of the surgery. */
  seed: z.number().int().min(0),
  recipe: armRecipeSchema,
  /** Packed training and test images; null compresses the weights alone. */
  data: dataBlobsSchema.nullable(),
  /** Timed throughput steps and their batch; null: not measured. */
  measure: z.object({ batch: z.number().int().positive(), steps: z.number().int().positive() }).nullable(),
  /** Where the fine-tune keeps its checkpoints and resumes from (local runs only); absent: a temporary folder. */
  checkpointDir: checkpointDirSchema,
});

/**
 * The `layers` and `perLayerOptions` of an arm unit that rewrites the choices of a sensitivity selection
 * (`@decompose/sensitivity`'s `Selection`, or a selection file's `choices`), each at its chosen options.
 */
export function selectionPlan(selection: {
  readonly choices: readonly { readonly layer: string; readonly options: unknown }[];
}): { layers: string[]; perLayerOptions: Record<string, unknown> } {
  return {
    layers: selection.choices.map((c) => c.layer),
    perLayerOptions: Object.fromEntries(selection.choices.map((c) => [c.layer, c.options])),
  };
}

/** The result of an {@link armUnit}: the model as a blob, and the figures of `runArmPipeline`. */
export const armUnitResultSchema = z.object({
  /** Blob id of the packed compressed model (with the plugins it needs). */
  model: blobIdSchema,
  strategy: z.string(),
  plugin: z.string().nullable(),
  plugins: z.array(z.string()),
  // Core's report of each layer, as it is (its costs and the strategy's info); checked for its layer name.
  rewritten: z.array(
    z.custom<LayerReplacement>(
      (value) => typeof (value as { layer?: unknown } | null)?.layer === 'string',
      'expected a layer replacement of core surgery',
    ),
  ),
  skipped: z.array(z.object({ layer: z.string(), reason: z.string() })),
  cost: z.object({ params: z.number(), forwardMacs: z.number() }),
  surgery: figuresSchema.nullable(),
  batchNorm: figuresSchema.extend({ layers: z.number().int(), images: z.number().int() }).nullable(),
  fineTuned: figuresSchema.nullable(),
  fineTune: z
    .object({
      epochs: z.array(epochMetricsSchema),
      steps: stepLossesSchema,
    })
    .nullable(),
  measured: z
    .object({
      accuracy: z.number(),
      loss: z.number(),
      params: z.number(),
      forwardMacs: z.number(),
      trainImagesPerSecond: z.number(),
      evalImagesPerSecond: z.number(),
    })
    .nullable(),
  seconds: z.object({
    surgery: z.number(),
    batchNorm: z.number(),
    fineTune: z.number(),
    measure: z.number(),
  }),
});

/** The result of an arm unit. */
export type ArmUnitResult = z.output<typeof armUnitResultSchema>;

/**
 * One arm as a unit of work (`runArmPipeline` on blobs): baseline and images come as blob ids, the compressed
 * model goes back as one. Its progress is the pipeline's events (`{ phase: 'surgery', … }`), each fine-tune
 * step (`phase: 'step'`, with train's `StepProgress` fields) and epoch (`phase: 'epoch'`, `metrics`), and
 * `phase: 'resumed'` when the fine-tune goes on from a checkpoint. Each fine-tune epoch's checkpoint, with the
 * step losses so far, is saved through the unit's checkpoint (Redis on a queue): a retried unit redoes the
 * surgery and re-estimation (deterministic), then resumes the fine-tune after the last saved epoch, with the
 * same numbers as an uninterrupted run.
 */
export const armUnit = defineUnitKind({
  kind: 'arm',
  version: '1',
  input: armUnitInputSchema,
  result: armUnitResultSchema,
  async run(input, { blobs, checkpoint, reportProgress, signal }) {
    await initEngine();
    const packed = await blobs.get(input.baseline);
    const baselinePlugins = unpackModel(packed).plugins;
    const baseline = await loadPackedModel(packed);
    try {
      const data = input.data === null ? null : await readImageSets(blobs, input.data);
      const done = await withCheckpointFolder(
        'arm',
        input.checkpointDir,
        checkpoint,
        z.object({ steps: stepLossesSchema }),
        async ({ dir, restored, saved }) => {
          if (restored !== null) reportProgress(resumedProgress(restored.epoch, input.recipe.epochs));
          // The step losses of the epochs before a resume come with the checkpoint; train reports the rest.
          const steps = restored?.extra.steps ?? [];
          const result = await runArmPipeline(
            {
              baseline,
              baselinePlugins,
              strategy: input.strategy,
              layers: input.layers,
              options: input.options,
              perLayerOptions: input.perLayerOptions,
              init: input.init,
              seed: input.seed,
              recipe: input.recipe,
              data,
              measure: input.measure,
            },
            {
              checkpointDir: dir,
              resume: true,
              signal,
              onEvent: (event) => reportProgress({ done: 0, total: 1, ...event }),
              onStep: (p) => {
                steps.push({ step: p.globalStep, loss: p.loss });
                reportProgress(stepProgress(p));
              },
              onEpoch: (m) => {
                saved(m.epoch, { steps });
                reportProgress(epochProgress(m));
              },
            },
          );
          return result.fineTune === null ? result : { ...result, fineTune: { ...result.fineTune, steps } };
        },
      );
      try {
        const model = await blobs.put(await packModel(done.model, done.plugins));
        const { model: _, ...figures } = done;
        return { ...figures, model };
      } finally {
        done.model.dispose();
      }
    } finally {
      baseline.dispose();
    }
  },
});
