import { initEngine } from '@decompose/engine';
import { blobIdSchema, defineUnitKind } from '@decompose/jobs';
import { ARCHITECTURES, createCifarResNet, INITS, SHORTCUTS } from '@decompose/resnet';
import { readMetrics, train } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { holdOutSchema, holdOutSplit } from '../calibration.js';
import { loadPackedModel, packModel, unpackModel } from '../models.js';
import { BUILT_IN_LAYER_MODULES } from '../strategies.js';
import { sgdSettingsSchema, trainOptions } from '../training.js';
import { checkpointDirSchema, withCheckpointFolder } from './checkpoint-folder.js';
import {
  dataBlobsSchema,
  epochMetricsSchema,
  epochProgress,
  readImageSets,
  resumedProgress,
  stepProgress,
} from './shared.js';

/** The input of a {@link trainingRunUnit}. */
export const trainingRunInputSchema = z
  .object({
    /** A fresh CIFAR ResNet (what `createCifarResNet` takes), or null to train `model`. */
    architecture: z
      .object({
        arch: z.enum(ARCHITECTURES),
        shortcut: z.enum(SHORTCUTS).optional(),
        init: z.enum(INITS).optional(),
        seed: z.number().int().min(0),
      })
      .nullable(),
    /** Blob id of a packed model to train further, or null to train `architecture`. */
    model: blobIdSchema.nullable(),
    data: dataBlobsSchema,
    recipe: sgdSettingsSchema.extend({ epochs: z.number().int().positive() }),
    /** A stratified calibration split of the training images kept out of training (`holdOutSplit`). */
    holdOut: z.object({ count: z.number().int().positive(), seed: z.number().int().min(0) }).nullable(),
    /** Where the training keeps its checkpoints and resumes from (local runs only); absent: a temporary folder. */
    checkpointDir: checkpointDirSchema,
  })
  .refine((input) => (input.architecture === null) !== (input.model === null), {
    message: 'give either an architecture or a packed model, not both',
    path: ['model'],
  });

/** The result of a {@link trainingRunUnit}. */
export const trainingRunResultSchema = z.object({
  /** Blob id of the packed trained model. */
  model: blobIdSchema,
  epochs: z.array(epochMetricsSchema),
  /** The hold-out, enough to recreate it (null when none). */
  holdOut: holdOutSchema.nullable(),
  /** Training images trained on (without the hold-out). */
  trainImages: z.number().int(),
});

/**
 * A training run (the baseline training of `decompose compare`, `decompose train --queue`) as a unit of work:
 * a fresh ResNet or a packed model, trained with the recipe on the training images less the hold-out,
 * evaluated on the test images each epoch. Progress: each step (`phase: 'step'`) and epoch (`phase: 'epoch'`),
 * and `phase: 'resumed'` when it goes on from a checkpoint. Each epoch's checkpoint is saved through the
 * unit's checkpoint (Redis on a queue), so a retried unit (its worker killed) resumes after the last saved
 * epoch and ends with the same weights as an uninterrupted run.
 */
export const trainingRunUnit = defineUnitKind({
  kind: 'training-run',
  version: '1',
  input: trainingRunInputSchema,
  result: trainingRunResultSchema,
  async run(input, { blobs, checkpoint, reportProgress, signal }) {
    await initEngine();
    const data = await readImageSets(blobs, input.data);
    const held =
      input.holdOut === null
        ? null
        : holdOutSplit(data.train, input.holdOut.count, input.holdOut.seed, 'holdOut');
    const trainData = held?.rest ?? data.train;
    let plugins: string[] = [];
    let model: tfl.LayersModel;
    if (input.model !== null) {
      const packed = await blobs.get(input.model);
      plugins = unpackModel(packed).plugins;
      model = await loadPackedModel(packed);
    } else {
      model = createCifarResNet(input.architecture ?? { arch: 'resnet20' });
    }
    const { epochs } = input.recipe;
    try {
      const history = await withCheckpointFolder(
        'training-run',
        input.checkpointDir,
        checkpoint,
        z.null(),
        async ({ dir, restored, saved }) => {
          if (restored !== null) reportProgress(resumedProgress(restored.epoch, epochs));
          await train({
            ...trainOptions(input.recipe, { model, trainData, evalData: data.test, epochs }),
            checkpointDir: dir,
            resume: true,
            signal,
            onStep: (p) => reportProgress(stepProgress(p)),
            onEpoch: (m) => {
              saved(m.epoch, null);
              reportProgress(epochProgress(m));
            },
            workerOptions: {
              setupModules: [...BUILT_IN_LAYER_MODULES, ...plugins],
              resolveFrom: new URL('.', import.meta.url),
            },
          });
          // Every epoch, those before a resume included.
          return await readMetrics(dir);
        },
      );
      return {
        model: await blobs.put(await packModel(model, plugins)),
        epochs: history,
        holdOut: held?.record ?? null,
        trainImages: trainData.count,
      };
    } finally {
      model.dispose();
    }
  },
});
