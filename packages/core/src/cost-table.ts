import type { LayersModel } from '@tensorflow/tfjs-layers';
import { convCost } from './cost.js';
import type {
  DecompositionStrategy,
  Layer,
  LayerCost,
  LayerCostContext,
  LayerCostFunction,
  Shape,
} from './strategy.js';
import { conv1dShape, convShape, nodeInModel, placedLayers } from './target.js';

/**
 * A layer that knows its own cost. Custom layers (e.g. a strategy's decomposed convolution) implement this
 * so that `costTable` can cost them without core knowing the class.
 */
export interface CostAwareLayer {
  layerCost(context: LayerCostContext): LayerCost;
}

/** How a row's cost was obtained. */
export type CostSource = 'option' | 'layer' | 'strategy' | 'registered' | 'builtin' | 'unknown';

/** One layer with weights. MACs are per image. */
export interface CostRow extends LayerCost {
  name: string;
  className: string;
  /** Weights that training updates (batch-norm moving statistics are counted in `params` only). */
  trainableParams: number;
  source: CostSource;
}

/** Every layer with weights, and the totals. */
export interface CostTable {
  rows: CostRow[];
  total: LayerCost & { trainableParams: number };
  /**
   * Layers with weights whose MACs are unknown (counted as 0): give them a cost function, or for a convolution over
   * an input of unknown spatial size (`[null, null, c]`), a fixed input shape.
   */
  uncosted: string[];
}

/** Extra cost functions for `costTable`, for layer classes core does not know. */
export interface CostTableOptions {
  /** Cost functions by class name; they take precedence over everything else. */
  layerCosts?: Readonly<Record<string, LayerCostFunction>>;
  /** Strategies whose `layerCosts` cost the custom layers they create (e.g. `registry.list()`). */
  strategies?: readonly DecompositionStrategy[];
}

const registered = new Map<string, LayerCostFunction>();

/**
 * Registers the cost function of a layer class for every later `costTable` call (for classes that cannot
 * implement `CostAwareLayer` themselves). Re-registering a class replaces its function.
 */
export function registerLayerCost(className: string, cost: LayerCostFunction): void {
  registered.set(className, cost);
}

const size = (shape: Shape) => shape.reduce<number>((n, d) => n * (d ?? 1), 1);
const perImage = (shape: Shape | undefined) => (shape === undefined ? 0 : size(shape.slice(1)));

function isCostAware(layer: Layer): layer is Layer & CostAwareLayer {
  return typeof (layer as Partial<CostAwareLayer>).layerCost === 'function';
}

/** Dense: one multiply-add per weight and position; backward: input and weight gradients, as many again each. */
function denseCost(layer: Layer, context: LayerCostContext): LayerCost {
  const kernel = layer.getWeights()[0];
  const inputShape = context.inputShapes[0] ?? [];
  const positions = size(inputShape.slice(1, -1));
  const forwardMacs = (kernel?.size ?? 0) * positions;
  return { params: layer.countParams(), forwardMacs, backwardMacs: 2 * forwardMacs };
}

/**
 * Kernel area, input channels and output pixels of a (depthwise or separable) convolution where it sits; null
 * when the output's spatial size is unknown (per-image MACs are then unknown, as for a Conv2D).
 */
function convGeometry(layer: Layer, context: LayerCostContext) {
  const config = layer.getConfig();
  const size = config.kernelSize;
  const [kh, kw] = (Array.isArray(size) ? size : [size, size]).map(Number) as [number, number];
  const first = config.dataFormat === 'channelsFirst';
  const input = context.inputShapes[0] ?? [];
  const output = context.outputShapes[0] ?? [];
  const inChannels = Number((first ? input[1] : input[input.length - 1]) ?? 0);
  const spatial = first ? output.slice(2) : output.slice(1, -1);
  if (spatial.some((d) => d === null)) return null;
  const pixels = spatial.reduce<number>((n, d) => n * d!, 1);
  // From the depthwise kernel [k_h, k_w, C_in, multiplier]: SeparableConv2D's config leaves depthMultiplier out.
  const multiplier = layer.weights[0]?.shape[3] ?? 1;
  return { area: kh * kw, inChannels, multiplier, pixels };
}

/**
 * DepthwiseConv2D: each of the C_in·multiplier outputs is one k×k filter over one input channel, so
 * k²·C_in·multiplier multiply-adds per output pixel; backward: input and weight gradients, as many again each.
 */
function depthwiseCost(layer: Layer, context: LayerCostContext): LayerCost | null {
  const geometry = convGeometry(layer, context);
  if (geometry === null) return null;
  const { area, inChannels, multiplier, pixels } = geometry;
  const forwardMacs = area * inChannels * multiplier * pixels;
  return { params: layer.countParams(), forwardMacs, backwardMacs: 2 * forwardMacs };
}

/** SeparableConv2D: the depthwise step, then a 1×1 pointwise convolution C_in·multiplier → filters. */
function separableCost(layer: Layer, context: LayerCostContext): LayerCost | null {
  const geometry = convGeometry(layer, context);
  if (geometry === null) return null;
  const { area, inChannels, multiplier, pixels } = geometry;
  const filters = Number(layer.getConfig().filters);
  const forwardMacs = (area + filters) * inChannels * multiplier * pixels;
  return { params: layer.countParams(), forwardMacs, backwardMacs: 2 * forwardMacs };
}

/** Batch norm folds to one multiply-add per element at inference; backward costs about two. */
function batchNormCost(layer: Layer, context: LayerCostContext): LayerCost {
  const elements = perImage(context.outputShapes[0]);
  return { params: layer.countParams(), forwardMacs: elements, backwardMacs: 2 * elements };
}

const builtin: Record<
  string,
  (layer: Layer, context: LayerCostContext, model: LayersModel) => LayerCost | null
> = {
  Conv2D: (layer, _context, model) => {
    const shape = convShape(layer, nodeInModel(model, layer));
    // Per-image MACs of a convolution over an input of unknown spatial size are unknown.
    return shape === null || shape.perOutputPixel ? null : convCost(shape);
  },
  // Exactly the Conv2D over a 1×L image it equals (kernel 1×k).
  Conv1D: (layer, _context, model) => {
    const shape = conv1dShape(layer, nodeInModel(model, layer));
    return shape === null || shape.perOutputPixel ? null : convCost(shape);
  },
  Dense: denseCost,
  DepthwiseConv2D: depthwiseCost,
  SeparableConv2D: separableCost,
  BatchNormalization: batchNormCost,
};

function costOf(
  layer: Layer,
  context: LayerCostContext,
  model: LayersModel,
  options: CostTableOptions,
): { cost: LayerCost; source: CostSource } {
  const className = layer.getClassName();
  const fromOption = options.layerCosts?.[className];
  if (fromOption) return { cost: fromOption(layer, context), source: 'option' };
  if (isCostAware(layer)) return { cost: layer.layerCost(context), source: 'layer' };
  const fromStrategy = options.strategies?.find((s) => s.layerCosts?.[className])?.layerCosts?.[className];
  if (fromStrategy) return { cost: fromStrategy(layer, context), source: 'strategy' };
  const fromRegistry = registered.get(className);
  if (fromRegistry) return { cost: fromRegistry(layer, context), source: 'registered' };
  const cost = builtin[className]?.(layer, context, model) ?? null;
  if (cost !== null) return { cost, source: 'builtin' };
  return { cost: { params: layer.countParams(), forwardMacs: 0, backwardMacs: 0 }, source: 'unknown' };
}

/**
 * Parameters and per-image multiply-adds (forward, backward) of every layer with weights: `Conv2D`, `Conv1D`,
 * `Dense`, `DepthwiseConv2D`, `SeparableConv2D` and `BatchNormalization` built in (a convolution over an input of
 * unknown spatial size is listed in `uncosted`); other classes through `options.layerCosts`, a `layerCost()` method on
 * the layer (`CostAwareLayer`), the `layerCosts` of `options.strategies`, or `registerLayerCost`, in that
 * order; anything else is listed in `uncosted`. The layers of a nested sub-model (a `tf.sequential` or functional
 * model used as a layer) have rows of their own, named `<sub-model>/<layer>`.
 */
export function costTable(model: LayersModel, options: CostTableOptions = {}): CostTable {
  const rows: CostRow[] = [];
  // A nested sub-model's layers stand in for it, named `<sub-model>/<layer>`.
  for (const { layer, graph, path } of placedLayers(model)) {
    if (layer.weights.length === 0) continue;
    const node = nodeInModel(graph, layer);
    const context: LayerCostContext = {
      inputShapes: node.inputTensors.map((t) => t.shape),
      outputShapes: node.outputTensors.map((t) => t.shape),
    };
    const { cost, source } = costOf(layer, context, graph, options);
    const trainableParams = layer.trainableWeights.reduce((n, w) => n + size(w.shape), 0);
    rows.push({ name: path, className: layer.getClassName(), ...cost, trainableParams, source });
  }
  const total = rows.reduce(
    (sum, r) => ({
      params: sum.params + r.params,
      trainableParams: sum.trainableParams + r.trainableParams,
      forwardMacs: sum.forwardMacs + r.forwardMacs,
      backwardMacs: sum.backwardMacs + r.backwardMacs,
    }),
    { params: 0, trainableParams: 0, forwardMacs: 0, backwardMacs: 0 },
  );
  return { rows, total, uncosted: rows.filter((r) => r.source === 'unknown').map((r) => r.name) };
}
