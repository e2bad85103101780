import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, LayerVariable, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { accelerateBatchNormTraining } from '../batch-norm-training.js';
import { EngineError } from '../errors.js';
import { skipInputGradients } from '../input-convolutions.js';

/**
 * Thrown (by {@link checkTrainable}, which `createGradientComputer` runs) when a layer of the model cannot be
 * differentiated on the active backend: a kernel its forward pass or its gradient needs is missing there, or tfjs
 * has no gradient for one of its options (e.g. a dilated `Conv2D`).
 */
export class UntrainableLayerError extends EngineError {
  override readonly name = 'UntrainableLayerError';
  constructor(
    /** The layer's name in the model. */
    readonly layer: string,
    /** Its tfjs-layers class, e.g. `Conv2D`. */
    readonly className: string,
    readonly backend: string,
    /** The kernel the backend lacks, when the failure names one. */
    readonly kernel: string | undefined,
    /** The underlying error's message. */
    readonly detail: string,
  ) {
    super(
      `Layer '${layer}' (${className}) cannot train on the ${backend} backend: ` +
        (kernel === undefined ? detail : `kernel '${kernel}' is not registered for it`) +
        '. ' +
        (kernel === undefined
          ? 'tfjs cannot differentiate this configuration of the layer on any backend: change or replace it.'
          : `Use another backend (DECOMPOSE_BACKEND=cpu trains every stock layer), or replace the layer.`),
    );
  }
}

const MISSING_KERNEL = /Kernel '([^']+)' not registered for backend '([^']+)'/;

/** Deterministic inputs in [-1, 1] (their values do not matter: the dry run only has to reach every kernel). */
function probe(shape: number[]): tf.Tensor {
  const values = new Float32Array(tf.util.sizeFromShape(shape));
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(1 + 0.37 * i);
  return tf.tensor(values, shape);
}

/** The part of tfjs-core's engine state that a failed gradient leaves behind. */
interface TapeState {
  gradientDepth: number;
  activeTape: { saved?: tf.Tensor[] }[] | null;
}

/**
 * Disposes the tensors a gradient tape saved for the backward pass. tfjs-core frees them only when the backward
 * pass completes, so a gradient that throws (a missing kernel, an unsupported option) would leak them.
 */
function discardTape(): void {
  const state = (tf.engine() as unknown as { state: TapeState }).state;
  if (state.gradientDepth !== 0 || state.activeTape === null) return;
  for (const node of state.activeTape) tf.dispose(node.saved ?? []);
  state.activeTape = null;
}

/** Shape of a symbolic tensor for one example (batch 1). */
const oneExample = (t: SymbolicTensor): number[] => t.shape.map((d, i) => (i === 0 ? 1 : (d ?? 1)));

/**
 * One forward and backward pass in training mode, of `apply` on `inputs`, differentiating a loss reaching every
 * output with respect to the inputs and `weights`; everything is disposed.
 */
function dryRun(
  apply: (inputs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
  shapes: number[][],
  weights: LayerVariable[],
) {
  const inputs = shapes.map((shape) => tf.tidy(() => tf.variable(probe(shape))));
  try {
    tf.tidy(() => {
      const variables = [...inputs, ...weights.map((w) => w.read() as tf.Variable)];
      const { value, grads } = tf.variableGrads(() => {
        const outputs = [apply(inputs)].flat();
        return tf.addN(outputs.map((y) => tf.sum(tf.square(tf.cast(y, 'float32'))))) as tf.Scalar;
      }, variables);
      tf.dispose([value, ...Object.values(grads)]);
    });
  } catch (error) {
    discardTape();
    throw error;
  } finally {
    tf.dispose(inputs);
  }
}

/**
 * Checks, before any training, that every layer of `model` can be differentiated on the active backend: one
 * training-mode forward and backward pass of the whole model on a 1-example batch, and, only if that fails, of
 * each layer on its own to name the culprit. A dry run, rather than a list of the kernels each layer class
 * needs, because the kernels a layer runs depend on its options and on tfjs' internals (fused or not, transposes
 * for channels-first, the gradient's own kernels) and on which engine kernels are installed: running it asks
 * exactly the question. BatchNorm moving statistics (every non-trainable weight) are restored afterwards.
 * Throws {@link UntrainableLayerError}.
 */
export function checkTrainable(model: LayersModel): void {
  accelerateBatchNormTraining(model);
  skipInputGradients(model);
  const frozen = model.nonTrainableWeights;
  const saved = frozen.map((w) => tf.clone(w.read()));
  try {
    const shapes = model.inputs.map(oneExample);
    try {
      dryRun(
        (inputs) => model.apply(inputs, { training: true }) as tf.Tensor | tf.Tensor[],
        shapes,
        model.trainableWeights,
      );
      return;
    } catch (error) {
      for (const layer of model.layers) {
        if (layer.getClassName() === 'InputLayer') continue;
        const node = layer.inboundNodes[0];
        if (node === undefined) continue;
        const layerShapes = node.inputTensors.map(oneExample);
        try {
          dryRun(
            (inputs) =>
              layer.apply(inputs.length === 1 ? (inputs[0] as tf.Tensor) : inputs, {
                training: true,
              }) as tf.Tensor,
            layerShapes,
            layer.trainableWeights,
          );
        } catch (layerError) {
          const detail = layerError instanceof Error ? layerError.message : String(layerError);
          const missing = MISSING_KERNEL.exec(detail);
          throw new UntrainableLayerError(
            layer.name,
            layer.getClassName(),
            tf.getBackend(),
            missing?.[1],
            detail,
          );
        }
      }
      throw error;
    }
  } finally {
    frozen.forEach((w, i) => {
      w.write(saved[i] as tf.Tensor);
    });
    tf.dispose(saved);
  }
}
