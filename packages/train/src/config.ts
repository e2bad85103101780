import type { LayersModel } from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { scheduleSpecSchema } from './schedule.js';
import { sgdOptionsSchema } from './sgd.js';

/** Zod schema of a model's weight signature: every weight's name, shape and trainability, in order. */
export const modelSignatureSchema = z.object({
  name: z.string(),
  weights: z.array(
    z.object({
      name: z.string(),
      shape: z.array(z.number().int().nonnegative()),
      trainable: z.boolean(),
    }),
  ),
});

/** What identifies a model for a checkpoint: its weights' names, shapes and trainability. */
export type ModelSignature = z.output<typeof modelSignatureSchema>;

/** Zod schema of {@link TrainConfig}. */
export const trainConfigSchema = z.object({
  model: modelSignatureSchema,
  epochs: z.number().int().positive(),
  batchSize: z.number().int().positive(),
  dropLast: z.boolean(),
  augment: z.boolean(),
  seed: z.number().int().nonnegative(),
  trainCount: z.number().int().positive(),
  labelSmoothing: z.number().min(0).lt(1),
  schedule: scheduleSpecSchema,
  optimizer: sgdOptionsSchema,
});

/**
 * Everything that determines a training run's result, with defaults filled in: stored in each checkpoint
 * and compared on resume. (The number of gradient workers is left out: it changes only rounding.)
 */
export type TrainConfig = z.output<typeof trainConfigSchema>;

/** The weight signature of `model` (all weights, BatchNorm moving statistics included). */
export function modelSignature(model: LayersModel): ModelSignature {
  return {
    name: model.name,
    weights: model.weights.map((w) => ({
      name: w.originalName,
      shape: w.shape.map((d) => d ?? 0),
      trainable: w.trainable,
    })),
  };
}

const MAX_LISTED = 8;

/**
 * Differences between a checkpoint's config and this run's, one readable line each
 * (`config.epochs: checkpoint 2, this run 3`); empty when they match. The model's name is not compared:
 * weights decide whether a checkpoint fits.
 */
export function configDifferences(saved: TrainConfig, current: TrainConfig): string[] {
  const differences = weightDifferences(saved.model, current.model);
  const { model: _savedModel, ...savedRest } = saved;
  const { model: _currentModel, ...currentRest } = current;
  const savedLeaves = leaves(savedRest, 'config');
  const currentLeaves = leaves(currentRest, 'config');
  for (const key of new Set([...savedLeaves.keys(), ...currentLeaves.keys()])) {
    const before = savedLeaves.get(key);
    const after = currentLeaves.get(key);
    if (before !== after)
      differences.push(`${key}: checkpoint ${before ?? 'unset'}, this run ${after ?? 'unset'}`);
  }
  return differences;
}

function weightDifferences(saved: ModelSignature, current: ModelSignature): string[] {
  const differences: string[] = [];
  const currentByName = new Map(current.weights.map((w) => [w.name, w]));
  const savedNames = new Set(saved.weights.map((w) => w.name));
  for (const weight of saved.weights) {
    const match = currentByName.get(weight.name);
    if (!match) differences.push(`weight ${weight.name}: in the checkpoint, not in the model`);
    else if (match.shape.join('x') !== weight.shape.join('x')) {
      differences.push(
        `weight ${weight.name}: checkpoint shape [${weight.shape.join(', ')}], model [${match.shape.join(', ')}]`,
      );
    } else if (match.trainable !== weight.trainable) {
      differences.push(
        `weight ${weight.name}: trainable ${weight.trainable} in the checkpoint, ${match.trainable} now`,
      );
    }
  }
  for (const weight of current.weights) {
    if (!savedNames.has(weight.name))
      differences.push(`weight ${weight.name}: in the model, not in the checkpoint`);
  }
  if (differences.length > MAX_LISTED) {
    const more = differences.length - MAX_LISTED;
    differences.length = MAX_LISTED;
    differences.push(`… and ${more} more weight differences`);
  }
  return differences;
}

/** Flattens a JSON-like value into `path → JSON text` of its leaves. */
function leaves(value: unknown, path: string, into = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value)) leaves(child, `${path}.${key}`, into);
  } else {
    into.set(path, JSON.stringify(value));
  }
  return into;
}
