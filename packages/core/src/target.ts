import type { Tensor1D, Tensor4D } from '@tensorflow/tfjs-core';
import { model as functionalModel, type LayersModel, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { UnknownLayerError, UnsupportedModelError } from './errors.js';
import { closeNames } from './select.js';
import type { ConvShape, Layer, TargetLayer } from './strategy.js';

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
 * for other classes, channels-first data or unknown spatial sizes (fully convolutional inputs).
 */
export function convShape(layer: Layer, node: GraphNode): ConvShape | null {
  if (layer.getClassName() !== 'Conv2D') return null;
  const config = layer.getConfig();
  if (config.dataFormat !== 'channelsLast') return null;
  const inputSize = spatial(node.inputTensors[0]);
  const outputSize = spatial(node.outputTensors[0]);
  const inChannels = node.inputTensors[0]?.shape[3];
  if (inputSize === null || outputSize === null || typeof inChannels !== 'number') return null;
  const padding = config.padding;
  if (padding !== 'same' && padding !== 'valid') return null;
  return {
    kernelSize: pair(config.kernelSize, 'kernelSize', layer.name),
    inChannels,
    outChannels: Number(config.filters),
    strides: pair(config.strides, 'strides', layer.name),
    dilation: pair(config.dilationRate, 'dilationRate', layer.name),
    padding,
    useBias: config.useBias === true,
    inputSize,
    outputSize,
  };
}

/**
 * Describes a layer of `model` as surgery offers it to a strategy: class, convolution geometry (with the
 * spatial sizes of its input and output in this model), trained kernel and bias, fused activation. The
 * tensors are the layer's own weights: read them, never dispose them.
 */
export function describeLayer(model: LayersModel, layerOrName: Layer | string): TargetLayer {
  model = graphOf(model);
  const layer = typeof layerOrName === 'string' ? findLayer(model, layerOrName) : layerOrName;
  const node = nodeInModel(model, layer);
  const conv = convShape(layer, node);
  const weights = conv === null ? [] : layer.getWeights();
  const activation = layer.getConfig().activation;
  return {
    name: layer.name,
    className: layer.getClassName(),
    layer,
    conv,
    kernel: conv === null ? null : (weights[0] as Tensor4D),
    bias: conv?.useBias ? (weights[1] as Tensor1D) : null,
    activation: typeof activation === 'string' ? activation : 'linear',
  };
}

/** Every layer of the model that has a call in its graph (input layers excepted), described, in graph order. */
export function listTargets(model: LayersModel): TargetLayer[] {
  model = graphOf(model);
  return model.layers.filter((l) => !model.inputLayers.includes(l)).map((l) => describeLayer(model, l));
}
