import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { holdOutSchema, type TrainingRecord } from '@decompose/pipeline';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { RUN_FILES } from '../train.js';

/**
 * A trained model's folder and what its training run's summary.json says about calibration: the run's seed and
 * the images it held out (both null when the run left no summary).
 */
export interface TrainedModel extends TrainingRecord {
  /** The folder holding model.json. */
  modelDir: string;
}

const summarySchema = z.object({
  config: z.object({ seed: z.number().int().min(0) }),
  holdOut: holdOutSchema.nullable().optional(),
});

/**
 * Finds a trained model from `dir`: either the model folder itself (holding model.json; the run's summary is
 * then one level up, as `decompose train` writes it) or the training run's folder (holding `model/`).
 *
 * @throws ConfigError naming `field` when neither holds a model.
 */
export async function locateTrainedModel(dir: string, field: string): Promise<TrainedModel> {
  const resolved = path.resolve(dir);
  const candidates = [
    { modelDir: resolved, runDir: path.dirname(resolved) },
    { modelDir: path.join(resolved, RUN_FILES.model), runDir: resolved },
  ];
  const found = candidates.find((c) => existsSync(path.join(c.modelDir, 'model.json')));
  if (found === undefined) {
    throw new ConfigError([
      `${field}: got ${JSON.stringify(dir)}; expected a folder holding model.json (e.g. runs/r20/model) or a training run's folder holding model/`,
    ]);
  }
  const text = await readFile(path.join(found.runDir, RUN_FILES.summary), 'utf8').catch(() => null);
  const summary = text === null ? null : summarySchema.safeParse(JSON.parse(text));
  return {
    modelDir: found.modelDir,
    trainingSeed: summary?.success ? summary.data.config.seed : null,
    holdOut: summary?.success ? (summary.data.holdOut ?? null) : null,
  };
}
