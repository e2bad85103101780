import {
  add,
  dispose,
  randomNormal,
  randomUniform,
  type Scalar,
  sum,
  type Tensor,
  tidy,
  time,
  type Variable,
  variable,
  variableGrads,
} from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { cloneLayer } from './clone.js';
import { UnsupportedModelError } from './errors.js';
import { findPlaced, nodeInModel, type PlacedLayer, placedLayers } from './target.js';

/** How `measureLayerTimes` runs: batch size, repetitions, which layers. */
export interface MeasureLayerTimesOptions {
  /** Images per call (default 32). */
  batch?: number;
  /** Timed calls per layer and pass; the median is reported (default 5). */
  repeats?: number;
  /** Untimed calls before timing (default 1). */
  warmup?: number;
  /** Only these layers (exact names), in this order; default every layer of the model but the inputs. */
  layers?: readonly string[];
  /** Seed of the random inputs (default 0). */
  seed?: number;
  /** Called after each layer is measured. */
  onLayer?: (timing: LayerTiming, done: number, total: number) => void;
}

/** Median wall times of one layer on the active backend, for a whole batch. */
export interface LayerTiming {
  name: string;
  className: string;
  /** Input shapes of the timed calls (batch first). */
  inputShapes: number[][];
  /** Inference forward pass. */
  forwardMs: number;
  /**
   * Training forward pass plus gradients of the inputs and trainable weights; null when there is nothing to
   * differentiate (no float input and no trainable weight).
   */
  forwardBackwardMs: number | null;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function medianWallMs(run: () => void, warmup: number, repeats: number): Promise<number> {
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  // tf.time waits for the backend to finish (GPU backends are asynchronous), unlike a bare clock.
  for (let i = 0; i < repeats; i++) times.push((await time(run)).wallMs);
  return median(times);
}

function randomInput(shape: number[], dtype: string, seed: number): Tensor {
  if (dtype === 'float32') return tidy(() => variable(randomNormal(shape, 0, 1, 'float32', seed)));
  return randomUniform(shape, 0, 2, 'int32', seed);
}

function total(outputs: Tensor | Tensor[]): Scalar {
  const list = Array.isArray(outputs) ? outputs : [outputs];
  return list.map((t) => sum(t) as Scalar).reduce((a, b) => add(a, b) as Scalar);
}

async function timeLayer(
  { layer, graph, path }: PlacedLayer,
  options: Required<Omit<MeasureLayerTimesOptions, 'layers' | 'onLayer'>>,
): Promise<LayerTiming> {
  const node = nodeInModel(graph, layer);
  const inputShapes = node.inputTensors.map((t) => t.shape.map((d, i) => (i === 0 ? options.batch : d)));
  const known = inputShapes.map((shape) => shape.filter((d): d is number => d !== null));
  if (known.some((shape, i) => shape.length !== inputShapes[i]!.length)) {
    throw new UnsupportedModelError(
      layer.name,
      `its input shape ${JSON.stringify(inputShapes)} is not fully known`,
    );
  }
  const clone = cloneLayer(layer);
  const inputs = known.map((shape, i) => randomInput(shape, node.inputTensors[i]!.dtype, options.seed + i));
  const callInputs = inputs.length === 1 ? inputs[0]! : inputs;
  const call = (training: boolean) =>
    clone.apply(callInputs, { ...node.callArgs, training }) as Tensor | Tensor[];
  try {
    const forward = () => tidy(() => void call(false));
    forward(); // builds the clone (fresh weights: timings do not depend on their values)
    const variables = [
      ...inputs.filter((t): t is Variable => t.dtype === 'float32'),
      ...clone.trainableWeights.map((w) => w.read() as Variable),
    ];
    const forwardBackward =
      variables.length === 0
        ? null
        : () => tidy(() => void variableGrads(() => total(call(true)), variables));
    const forwardMs = await medianWallMs(forward, options.warmup, options.repeats);
    const forwardBackwardMs =
      forwardBackward === null ? null : await medianWallMs(forwardBackward, options.warmup, options.repeats);
    return {
      name: path,
      className: layer.getClassName(),
      inputShapes: known,
      forwardMs,
      forwardBackwardMs,
    };
  } finally {
    dispose(inputs);
    if (clone.built) clone.dispose();
  }
}

/**
 * Measures each layer in isolation on the active backend: a fresh copy of the layer (the model is not
 * touched) runs on random inputs of its input shapes, forward only and forward+backward, and the median
 * wall time of `repeats` calls after `warmup` is reported. Works for any registered layer class. The layers of a
 * nested sub-model are timed one by one, named `<sub-model>/<layer>` (as in `layers`).
 */
export async function measureLayerTimes(
  model: LayersModel,
  options: MeasureLayerTimesOptions = {},
): Promise<LayerTiming[]> {
  const settings = {
    batch: options.batch ?? 32,
    repeats: options.repeats ?? 5,
    warmup: options.warmup ?? 1,
    seed: options.seed ?? 0,
  };
  const layers = options.layers?.map((name) => findPlaced(model, name)) ?? placedLayers(model);
  const timings: LayerTiming[] = [];
  for (const layer of layers) {
    const timing = await timeLayer(layer, settings);
    timings.push(timing);
    options.onLayer?.(timing, timings.length, layers.length);
  }
  return timings;
}
