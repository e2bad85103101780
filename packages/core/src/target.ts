import type { Tensor1D, Tensor2D, Tensor4D } from '@tensorflow/tfjs-core';
import { model as functionalModel, LayersModel, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { UnknownLayerError, UnsupportedModelError } from './errors.js';
import { closeNames } from './select.js';
import type { ConvShape, DenseShape, Layer, TargetLayer } from './strategy.js';

/** A call of a layer inside a model's graph (tfjs-layers does not export the class). */
export type GraphNode = Layer['inboundNodes'][number];

/**
 * The model as a functional graph. A `Sequential` keeps its graph in a private inner model, so a functional
 * view over the same layers stands in for it (the view owns no weights of its own: never dispose it).
 */
export function graphOf(model: LayersModel): LayersModel {
  if (model.getClassName() !== 'Sequential') return model;
  if (!model.inputs?.length || !model.outputs?.length) {
    throw new UnsupportedModelError(
      model.name,
      'the Sequential model is not built; give its first layer an inputShape',
    );
  }
  return functionalModel({ inputs: model.inputs, outputs: model.outputs, name: model.name });
}

/**
 * The one node through which `layer` takes part in `model`. A layer called several times in the model
 * (shared weights) has several, which surgery and the cost model do not handle.
 */
export function nodeInModel(model: LayersModel, layer: Layer): GraphNode {
  const nodes = layer.inboundNodes.filter((_, i) => model.containerNodes.has(`${layer.name}_ib-${i}`));
  if (nodes.length !== 1) {
    throw new UnsupportedModelError(
      layer.name,
      nodes.length === 0
        ? 'the layer is not connected to the model'
        : `the layer is called ${nodes.length} times in the model (shared weights); only layers called once are supported`,
    );
  }
  return nodes[0]!;
}

/** The model's layer of that name; an `UnknownLayerError` listing close names when there is none. */
export function findLayer(model: LayersModel, name: string): Layer {
  const layer = model.layers.find((l) => l.name === name);
  if (layer === undefined) {
    throw new UnknownLayerError(
      name,
      closeNames(
        name,
        model.layers.map((l) => l.name),
      ),
    );
  }
  return layer;
}

/** Whether `layer` is a model (a `tf.sequential` or functional model) used as a layer of another model. */
export function isNestedModel(layer: Layer): layer is LayersModel {
  return layer instanceof LayersModel;
}

/** Separates the names of nested models from the names of their layers in a layer's path. */
export const PATH_SEPARATOR = '/';

/** A layer of a model, or of a sub-model used as one of its layers (at any depth), and where it is called. */
export interface PlacedLayer {
  /** Its name in the model: its own name, prefixed by those of the sub-models around it (`backbone/conv1`). */
  path: string;
  layer: Layer;
  /** The functional graph it is called in: the model's, or that of the sub-model around it. */
  graph: LayersModel;
  /** The sub-models around it, outermost first (empty for a layer of the model itself). */
  containers: LayersModel[];
}

/**
 * Every layer of the model that has a call in its graph (input layers excepted), in graph order, with each
 * nested sub-model replaced by its own layers (recursively), addressed as `<sub-model>/<layer>`.
 */
export function placedLayers(model: LayersModel): PlacedLayer[] {
  const placed: PlacedLayer[] = [];
  const walk = (outer: LayersModel, prefix: string, containers: LayersModel[]) => {
    const graph = graphOf(outer);
    for (const layer of graph.layers) {
      if (graph.inputLayers.includes(layer)) continue;
      nodeInModel(graph, layer);
      if (isNestedModel(layer)) {
        walk(layer, `${prefix}${layer.name}${PATH_SEPARATOR}`, [...containers, layer]);
      } else {
        placed.push({ path: `${prefix}${layer.name}`, layer, graph, containers });
      }
    }
  };
  walk(model, '', []);
  return placed;
}

/**
 * The layer at `path` (see {@link placedLayers}), or a layer of the model itself of that name (a nested
 * sub-model as a whole); an `UnknownLayerError` listing close names when there is none.
 */
export function findPlaced(model: LayersModel, path: string): PlacedLayer {
  const graph = graphOf(model);
  const placed = placedLayers(graph);
  const found = placed.find((p) => p.path === path);
  if (found !== undefined) return found;
  const own = graph.layers.find((l) => l.name === path && !graph.inputLayers.includes(l));
  if (own !== undefined) return { path, layer: own, graph, containers: [] };
  throw new UnknownLayerError(
    path,
    closeNames(
      path,
      placed.map((p) => p.path),
    ),
  );
}

/** The layer of the model itself that `placed` is, or is nested in. */
export function outermostLayer(placed: PlacedLayer): Layer {
  return placed.containers[0] ?? placed.layer;
}

function pair(value: unknown, what: string, layer: string): readonly [number, number] {
  const list = Array.isArray(value) ? value : [value, value];
  const [a, b] = list;
  if (typeof a !== 'number' || typeof b !== 'number') {
    throw new UnsupportedModelError(layer, `its ${what} ${JSON.stringify(value)} is not a pair of numbers`);
  }
  return [a, b];
}

function spatial(tensor: SymbolicTensor | undefined): readonly [number, number] | null {
  const [, h, w] = tensor?.shape ?? [];
  return typeof h === 'number' && typeof w === 'number' ? [h, w] : null;
}

/**
 * Geometry of a plain channels-last `Conv2D` from its config and the shapes of its call in the model; null
 * for other classes, channels-first data, paddings other than `same`/`valid` or unknown input channels. When
 * the spatial size of the input is unknown (a fully convolutional input such as `[null, null, 3]`), the shape
 * is that of one output pixel, flagged `perOutputPixel` (surgery needs only the weights).
 */
export function convShape(layer: Layer, node: GraphNode): ConvShape | null {
  if (layer.getClassName() !== 'Conv2D') return null;
  const config = layer.getConfig();
  if (config.dataFormat !== 'channelsLast') return null;
  const inChannels = node.inputTensors[0]?.shape[3];
  if (typeof inChannels !== 'number') return null;
  const padding = config.padding;
  if (padding !== 'same' && padding !== 'valid') return null;
  const strides = pair(config.strides, 'strides', layer.name);
  const inputSize = spatial(node.inputTensors[0]);
  const outputSize = spatial(node.outputTensors[0]);
  const known = inputSize !== null && outputSize !== null;
  return {
    kernelSize: pair(config.kernelSize, 'kernelSize', layer.name),
    inChannels,
    outChannels: Number(config.filters),
    strides,
    dilation: pair(config.dilationRate, 'dilationRate', layer.name),
    padding,
    useBias: config.useBias === true,
    inputSize: known ? inputSize : strides,
    outputSize: known ? outputSize : [1, 1],
    ...(known ? {} : { perOutputPixel: true }),
  };
}

/**
 * Geometry of a channels-last `Conv1D` as the Conv2D over a 1×L image it equals (kernel 1×k, strides 1×s, dilation
 * 1×d), so that `convCost` and a strategy's `cost(shape, options)` cost it exactly; null for other classes, `causal`
 * padding, channels-first data or unknown input channels. An input of unknown length gives one output position's
 * shape, flagged `perOutputPixel`, as {@link convShape} does.
 */
export function conv1dShape(layer: Layer, node: GraphNode): ConvShape | null {
  if (layer.getClassName() !== 'Conv1D') return null;
  const config = layer.getConfig();
  if (config.dataFormat === 'channelsFirst') return null;
  const [, length, inChannels] = node.inputTensors[0]?.shape ?? [];
  if (typeof inChannels !== 'number') return null;
  const padding = config.padding;
  if (padding !== 'same' && padding !== 'valid') return null;
  const single = (value: unknown, what: string) => pair([value].flat()[0], what, layer.name);
  const [, stride] = single(config.strides, 'strides');
  const outLength = node.outputTensors[0]?.shape[1];
  const known = typeof length === 'number' && typeof outLength === 'number';
  return {
    kernelSize: [1, single(config.kernelSize, 'kernelSize')[1]],
    inChannels,
    outChannels: Number(config.filters),
    strides: [1, stride],
    dilation: [1, single(config.dilationRate, 'dilationRate')[1]],
    padding,
    useBias: config.useBias === true,
    inputSize: known ? [1, length] : [1, stride],
    outputSize: known ? [1, outLength] : [1, 1],
    ...(known ? {} : { perOutputPixel: true }),
  };
}

/**
 * Geometry of a `Dense` layer from its config and the shape of its call in the model; null for other classes or
 * an input whose size is not fully known (besides the batch).
 */
export function denseShape(layer: Layer, node: GraphNode): DenseShape | null {
  if (layer.getClassName() !== 'Dense') return null;
  const shape = node.inputTensors[0]?.shape ?? [];
  const dims = shape.slice(1);
  if (dims.length === 0 || !dims.every((d): d is number => typeof d === 'number')) return null;
  const config = layer.getConfig();
  return {
    inFeatures: dims[dims.length - 1]!,
    units: Number(config.units),
    useBias: config.useBias === true,
    positions: dims.slice(0, -1).reduce((n, d) => n * d, 1),
  };
}

/**
 * The 1×1 convolution a `Dense` layer equals: C_in → units, stride 1, over a `positions`×1 input, so that
 * `convCost` and a strategy's `cost(shape, options)` cost it exactly (C_in·units MACs per position).
 */
export function denseAsConv(shape: DenseShape): ConvShape {
  return {
    kernelSize: [1, 1],
    inChannels: shape.inFeatures,
    outChannels: shape.units,
    strides: [1, 1],
    dilation: [1, 1],
    padding: 'valid',
    useBias: shape.useBias,
    inputSize: [shape.positions, 1],
    outputSize: [shape.positions, 1],
  };
}

/**
 * The geometry surgery costs a target by, the one a strategy's `cost(shape, options)` receives: the
 * convolution's own, or for a `Dense` the 1×1 convolution it equals ({@link denseAsConv}); null for a layer
 * surgery cannot rewrite.
 */
export function targetShape(target: TargetLayer): ConvShape | null {
  if (target.conv !== null) return target.conv;
  return target.dense === null ? null : denseAsConv(target.dense);
}

/**
 * Why surgery cannot rewrite `target` whatever the strategy (shown to users verbatim), or null when it can: a
 * plain channels-last `Conv2D` (of any input size), a `Dense` with known input size, a channels-last `Conv1D`
 * with `same` or `valid` padding (rewritten as the Conv2D over a 1×L image it equals), or a channels-last,
 * undilated `SeparableConv2D` (its 1×1 pointwise step rewritten, its depthwise step kept). Strategies may use it for their
 * own refusals.
 */
export function unsupportedReason(target: TargetLayer): string | null {
  switch (target.className) {
    case 'DepthwiseConv2D':
      return 'depthwise convolution: each output channel has its own single k×k filter, so there is no cross-channel matrix to factor';
    case 'SeparableConv2D':
      return separableReason(target.layer);
  }
  if (target.conv !== null || target.dense !== null) return null;
  switch (target.className) {
    case 'Conv2D':
    case 'Conv1D':
      return convReason(target.layer);
    case 'Dense':
      return 'the Dense layer’s input size is unknown; give the model a fixed input shape';
    default:
      return `the layer is a ${target.className}, not a layer surgery rewrites (a channels-last Conv2D, Conv1D or SeparableConv2D, or a Dense)`;
  }
}

const channelsFirstReason =
  'channelsFirst convolution: surgery and the strategies’ layers are channels-last; convert the model to channelsLast (dataFormat: "channelsLast", inputs NHWC)';

/** Why surgery cannot keep a `SeparableConv2D`'s depthwise step as a stock `DepthwiseConv2D`, or null. */
function separableReason(layer: Layer): string | null {
  const config = layer.getConfig();
  if (config.dataFormat === 'channelsFirst') return channelsFirstReason;
  const dilation = [config.dilationRate].flat();
  if (dilation.some((d) => d !== 1)) {
    return 'dilated separable convolution: its depthwise step would be kept as a DepthwiseConv2D, and tfjs-layers’ DepthwiseConv2D ignores dilationRate';
  }
  return null;
}

/** Why a `Conv2D` or `Conv1D` has no `ConvShape` (see {@link convShape} and {@link conv1dShape}). */
function convReason(layer: Layer): string {
  const config = layer.getConfig();
  if (config.dataFormat === 'channelsFirst') return channelsFirstReason;
  if (config.padding === 'causal') {
    return 'causal padding: it pads the sequence on the left only, which the same/valid padding of the Conv2D surgery rewrites it as cannot express';
  }
  if (config.padding !== 'same' && config.padding !== 'valid') {
    return `its padding '${String(config.padding)}' is neither 'same' nor 'valid'`;
  }
  return 'the number of its input channels is unknown; give the model an input shape whose last axis is known';
}

/**
 * Describes a layer of `model`: class, convolution or Dense geometry (with the sizes of its input and output in
 * this model), trained kernel and bias, fused activation. A layer of a nested sub-model is named by its path,
 * `<sub-model>/<layer>` (see {@link placedLayers}). The tensors are the layer's own weights: read them, never
 * dispose them. A `Conv1D` is described with the geometry of the Conv2D it equals ({@link conv1dShape}) and no
 * `kernel` (its own is 3-D), a `SeparableConv2D` with no geometry; surgery offers a strategy either as a stock
 * `Conv2D` of its own (see `conv2dView`), which is what `strategy.supports` and `decompose` receive.
 */
export function describeLayer(model: LayersModel, layerOrName: Layer | string | PlacedLayer): TargetLayer {
  const placed =
    typeof layerOrName === 'string'
      ? findPlaced(model, layerOrName)
      : 'containers' in layerOrName
        ? layerOrName
        : (placedLayers(model).find((p) => p.layer === layerOrName) ?? findPlaced(model, layerOrName.name));
  const { layer, graph } = placed;
  const node = nodeInModel(graph, layer);
  const conv = convShape(layer, node) ?? conv1dShape(layer, node);
  const dense = conv === null ? denseShape(layer, node) : null;
  const weights = conv === null && dense === null ? [] : layer.getWeights();
  const activation = layer.getConfig().activation;
  const useBias = conv?.useBias ?? dense?.useBias ?? false;
  return {
    name: placed.path,
    className: layer.getClassName(),
    layer,
    conv,
    // A Conv1D's own kernel is 3-D; surgery hands strategies the 4-D kernel of the Conv2D it equals.
    kernel: conv === null || layer.getClassName() !== 'Conv2D' ? null : (weights[0] as Tensor4D),
    dense,
    denseKernel: dense === null ? null : (weights[0] as Tensor2D),
    bias: useBias ? (weights[1] as Tensor1D) : null,
    activation: typeof activation === 'string' ? activation : 'linear',
  };
}

/**
 * Every layer of the model that has a call in its graph (input layers excepted), described, in graph order;
 * the layers of a nested sub-model stand in for it, named `<sub-model>/<layer>`.
 */
export function listTargets(model: LayersModel): TargetLayer[] {
  return placedLayers(model).map((p) => describeLayer(model, p));
}
