import { existsSync } from 'node:fs';
import path from 'node:path';
import { readTrainingRecord, type TrainingRecord } from '@decompose/pipeline';
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
  return {
    modelDir: found.modelDir,
    ...(await readTrainingRecord(path.join(found.runDir, RUN_FILES.summary))),
  };
}
