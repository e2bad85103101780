// Export to stock layers: every custom layer of a model replaced by the stock tfjs-layers layers it lowers to, so
// that the saved model loads with a plain tf.loadLayersModel that registers nothing of ours.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { InvalidLoweringError, UnloweredLayerError } from './errors.js';
import { callLike, rebuildNested } from './graph.js';
import { inferenceModel } from './inference.js';
import type { DecompositionStrategy, Layer } from './strategy.js';
import { type GraphNode, graphOf, placedLayers } from './target.js';

/**
 * The stock layers a custom layer stands for: applied one after another in its place, they take its input and
 * give its output (same shape, same channel order, same values up to float rounding).
 */
export interface StockLowering {
  /** Unbuilt stock tfjs-layers layers (e.g. `tf.layers.conv2d(...)`), each with a name unique in the model. */
  layers: Layer[];
  /**
   * Weights per layer, in the order of that layer's `getWeights()` once built; `exportStock` sets them and then
   * disposes these tensors. An omitted or empty entry keeps the layer's own initialisers.
   */
  weights: tf.Tensor[][];
}

/** How one custom layer lowers to stock layers (see {@link StockLowering}). */
export type LayerLowering = (layer: Layer) => StockLowering;

/**
 * A custom layer that knows the stock layers it lowers to, so that `exportStock` handles it without being told
 * (as {@link CostAwareLayer} does for costs).
 */
export interface StockLowerableLayer {
  lowerToStock(): StockLowering;
}

/** What {@link exportStock} lowers, and whether it folds BatchNorm. */
export interface ExportStockOptions {
  /** Lowerings by class name; they take precedence over everything else. */
  lowerings?: Readonly<Record<string, LayerLowering>>;
  /** Strategies whose `lowerings` lower the custom layers they create (e.g. the runner's built-ins and plugins). */
  strategies?: readonly DecompositionStrategy[];
  /**
   * Fold every BatchNormalization into the convolution before it, and an activation after them into it (core's
   * {@link inferenceModel}, the eval path), for inference only. Default false.
   */
  foldBatchNorm?: boolean;
}

/** One custom layer of the model and the stock layers that replace it. */
export interface LoweredLayer {
  /** The custom layer's name. */
  layer: string;
  /** Its class name, e.g. `BasisConv2D`. */
  className: string;
  /** Names of the stock layers that replace it, in order. */
  replacements: string[];
}

/** The stock-only model (a new model; the original is untouched), and what was lowered. */
export interface StockExport {
  model: LayersModel;
  lowered: LoweredLayer[];
  /** Whether BatchNorm was folded ({@link ExportStockOptions.foldBatchNorm}). */
  foldedBatchNorm: boolean;
}

/**
 * The class names tfjs-layers registers itself (every layer class it ships), taken when core is first imported:
 * tfjs-layers is imported before, and any module defining a custom layer after (it imports core or tfjs-layers).
 */
const STOCK_CLASSES: ReadonlySet<string> = new Set(
  Object.keys(tf.serialization.SerializationMap.getMap().classNameMap),
);

/** Whether `className` is a layer class of tfjs-layers itself, which a plain `tf.loadLayersModel` knows. */
export function isStockLayerClass(className: string): boolean {
  return STOCK_CLASSES.has(className);
}

function isLowerable(layer: Layer): layer is Layer & StockLowerableLayer {
  return typeof (layer as Partial<StockLowerableLayer>).lowerToStock === 'function';
}

/** The lowering of `layer`, or null for a stock layer; in the precedence order of `costTable`. */
function loweringOf(layer: Layer, options: ExportStockOptions, path = layer.name): LayerLowering | null {
  const className = layer.getClassName();
  const fromOption = options.lowerings?.[className];
  if (fromOption) return fromOption;
  if (isLowerable(layer)) return () => layer.lowerToStock();
  const fromStrategy = options.strategies?.find((s) => s.lowerings?.[className])?.lowerings?.[className];
  if (fromStrategy) return fromStrategy;
  if (isStockLayerClass(className)) return null;
  throw new UnloweredLayerError(path, className);
}

function sameShape(a: readonly (number | null)[], b: readonly (number | null)[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Applies the lowering's layers in sequence where `layer` was, checking classes, names and the output shape. */
function insertLowering(
  layer: Layer,
  lowering: StockLowering,
  node: GraphNode,
  inputs: SymbolicTensor[],
  taken: Set<string>,
  built: Layer[],
  prefix: string,
): SymbolicTensor {
  const invalid = (reason: string) =>
    new InvalidLoweringError(`${prefix}${layer.name}`, layer.getClassName(), reason);
  if (lowering.layers.length === 0) throw invalid('it has no layers');
  if (lowering.weights.length > lowering.layers.length) {
    throw invalid(
      `it has weights for ${lowering.weights.length} layers but ${lowering.layers.length} layers`,
    );
  }
  taken.delete(`${prefix}${layer.name}`);
  for (const replacement of lowering.layers) {
    const className = replacement.getClassName();
    if (!isStockLayerClass(className))
      throw invalid(`its layer '${replacement.name}' is a ${className}, not stock`);
    if (taken.has(`${prefix}${replacement.name}`)) {
      throw invalid(`layer name '${replacement.name}' is already used in the model`);
    }
    taken.add(`${prefix}${replacement.name}`);
  }
  let current = inputs;
  for (const [i, replacement] of lowering.layers.entries()) {
    current = callLike(replacement, node, current);
    built.push(replacement);
    const weights = lowering.weights[i] ?? [];
    if (weights.length === 0) continue;
    try {
      replacement.setWeights(weights);
    } catch (error) {
      throw invalid(`the weights of '${replacement.name}' do not fit it (${(error as Error).message})`);
    }
  }
  const expected = node.outputTensors[0]!.shape;
  if (node.outputTensors.length !== 1 || current.length !== 1 || !sameShape(current[0]!.shape, expected)) {
    throw invalid(
      `its output shape ${JSON.stringify(current.map((t) => t.shape))} differs from the layer's ${JSON.stringify(expected)}`,
    );
  }
  return current[0]!;
}

/**
 * A copy of `model` made of stock tfjs-layers layers only: every custom layer is replaced by the stock layers it
 * lowers to, from `options.lowerings`, the layer's own `lowerToStock()` ({@link StockLowerableLayer}), or the
 * `lowerings` of `options.strategies`, in that order, and every other layer is copied with its weights. The
 * result computes what `model` computes (up to float rounding), keeps every stock layer's name (replacements are
 * named by their lowering, e.g. `<name>_basis` and `<name>_combine`), shares no variable with `model`, and loads
 * with a plain `tf.loadLayersModel` in a program that imports nothing of ours. With `foldBatchNorm`, the
 * BatchNormalization layers are then folded into the convolutions before them, for inference.
 * Custom layers inside nested sub-models are lowered too (the sub-model is rebuilt as a functional model of the
 * same name), and listed in `lowered` by path, `<sub-model>/<layer>`.
 *
 * Everything is checked before anything is built: a custom layer with no lowering is an
 * {@link UnloweredLayerError} naming the layer and its class; a lowering that returns non-stock layers, names
 * already in use or the wrong output shape is an {@link InvalidLoweringError}. Dispose the result when done.
 *
 * @example
 * ```ts
 * const { model: stock, lowered } = exportStock(compressed, { foldBatchNorm: true });
 * await stock.save(fileSystem('runs/r20-basis/stock'));
 * ```
 */
export function exportStock(model: LayersModel, options: ExportStockOptions = {}): StockExport {
  model = graphOf(model);
  // Layers of nested sub-models too: a sub-model holding a custom layer is rebuilt around its lowering.
  const placed = placedLayers(model);
  const plans = new Map<Layer, LayerLowering>();
  const descend = new Set<Layer>();
  for (const { layer, containers, path } of placed) {
    const lowering = loweringOf(layer, options, path);
    if (lowering === null) continue;
    plans.set(layer, lowering);
    for (const container of containers) descend.add(container);
  }
  const taken = new Set([...model.layers.map((l) => l.name), ...placed.map((p) => p.path)]);
  const lowered: LoweredLayer[] = [];
  const stock = rebuildNested(
    model,
    (layer, node, inputs, built, prefix) => {
      const lower = plans.get(layer);
      if (lower === undefined) return undefined;
      const lowering = lower(layer);
      try {
        const output = insertLowering(layer, lowering, node, inputs, taken, built, prefix);
        if (!layer.trainable) for (const replacement of lowering.layers) replacement.trainable = false;
        lowered.push({
          layer: `${prefix}${layer.name}`,
          className: layer.getClassName(),
          replacements: lowering.layers.map((l) => `${prefix}${l.name}`),
        });
        return [output];
      } finally {
        tf.dispose(lowering.weights.flat());
      }
    },
    (subModel) => descend.has(subModel),
  );
  if (options.foldBatchNorm !== true) return { model: stock, lowered, foldedBatchNorm: false };
  try {
    return { model: inferenceModel(stock).model, lowered, foldedBatchNorm: true };
  } finally {
    stock.dispose();
  }
}

/**
 * The largest absolute difference between the outputs of `a` and `b` (inference mode) on `inputs`, over every
 * output: how far an exported model is from the one it was exported from.
 */
export function maxOutputDifference(a: LayersModel, b: LayersModel, inputs: tf.Tensor | tf.Tensor[]): number {
  const difference = tf.tidy((): tf.Tensor => {
    const outputsOf = (m: LayersModel) => {
      const y = m.predict(inputs);
      return Array.isArray(y) ? y : [y];
    };
    const [ya, yb] = [outputsOf(a), outputsOf(b)];
    if (ya.length !== yb.length) return tf.scalar(Number.POSITIVE_INFINITY);
    return tf.max(tf.stack(ya.map((y, i) => tf.max(tf.abs(tf.sub(y, yb[i]!))))));
  });
  const value = difference.dataSync()[0]!;
  difference.dispose();
  return value;
}
