import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { Layer } from './strategy.js';

/** Options of {@link reestimateBatchNorm}. */
export interface ReestimateBatchNormOptions {
  /** Images per training-mode forward pass; default {@link DEFAULT_REESTIMATION_BATCH}. */
  batchSize?: number;
}

/** What {@link reestimateBatchNorm} did. */
export interface BatchNormReestimation {
  /** Names of the BatchNormalization layers whose moving statistics were replaced, in model order. */
  layers: string[];
  /** Images the statistics were averaged over. */
  images: number;
  /** Training-mode forward passes run. */
  batches: number;
}

/** Images per pass when the options do not say: the batch size of the training recipe. */
export const DEFAULT_REESTIMATION_BATCH = 128;

/** The stock layer's momentum, which its moving-average update reads on every training-mode call. */
interface MomentumLayer {
  momentum: number;
}

function checkInputs(model: LayersModel, inputs: readonly tf.Tensor[], batchSize: number): number {
  if (inputs.length !== model.inputs.length) {
    throw new RangeError(
      `reestimateBatchNorm: '${model.name}' takes ${model.inputs.length} input(s), got ${inputs.length} tensor(s).`,
    );
  }
  const count = inputs[0]?.shape[0] ?? 0;
  if (count === 0 || inputs.some((t) => t.shape[0] !== count)) {
    throw new RangeError(
      `reestimateBatchNorm needs at least one image and the same count in every input; got first dimensions ` +
        `${inputs.map((t) => t.shape[0]).join(', ')}.`,
    );
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`reestimateBatchNorm: batchSize must be a positive integer, got ${batchSize}.`);
  }
  return count;
}

/**
 * Replaces the moving mean and variance of every `BatchNormalization` layer of `model` with statistics measured
 * on `inputs` ("adaptive BatchNorm"): after a surgery the rewritten layers' outputs are distributed differently
 * (a low-rank approximation shrinks their variance), the stored statistics no longer normalise them, and the
 * error compounds through every later BatchNorm. Runs the model in training mode over `inputs` in batches; each
 * layer ends with the plain average of its per-batch means and variances (PyTorch's cumulative average,
 * `momentum=None`), taken with every earlier layer already normalising by batch statistics. Other weights are
 * untouched, and each layer's momentum is restored. Give it images distributed as in training (augmented, if
 * the model was trained with augmentation), or the re-estimated model fits another distribution.
 *
 * @param inputs one tensor per model input, images on the first axis
 * @throws RangeError if the inputs do not fit the model or `batchSize` is not a positive integer
 */
export function reestimateBatchNorm(
  model: LayersModel,
  inputs: tf.Tensor | readonly tf.Tensor[],
  options: ReestimateBatchNormOptions = {},
): BatchNormReestimation {
  const tensors = Array.isArray(inputs) ? (inputs as readonly tf.Tensor[]) : [inputs as tf.Tensor];
  const { batchSize = DEFAULT_REESTIMATION_BATCH } = options;
  const count = checkInputs(model, tensors, batchSize);
  const batchNorms: Layer[] = model.layers.filter((l) => l.getClassName() === 'BatchNormalization');
  const layers = batchNorms as unknown as MomentumLayer[];
  const momenta = layers.map((l) => l.momentum);
  let batches = 0;
  try {
    for (let start = 0; start < count; start += batchSize, batches++) {
      // Momentum k/(k+1) makes the k-th update (from 0) the running mean of the batches so far.
      for (const layer of layers) layer.momentum = batches / (batches + 1);
      const size = Math.min(batchSize, count - start);
      tf.tidy(() => {
        const slices = tensors.map((t) => tf.slice(t, start, size));
        model.apply(slices.length === 1 ? slices[0]! : slices, { training: true });
      });
    }
  } finally {
    layers.forEach((layer, i) => {
      layer.momentum = momenta[i]!;
    });
  }
  return { layers: batchNorms.map((l) => l.name), images: count, batches };
}
