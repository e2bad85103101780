// Cutting a functional graph between inner tensors, so a model can run from values computed earlier (the
// sensitivity scan reuses the activations in front of the one decomposed layer instead of recomputing them).
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { UnsupportedModelError } from './errors.js';
import { rebuildGraph } from './graph.js';
import type { Layer } from './strategy.js';
import { findLayer, findPlaced, graphOf, nodeInModel, outermostLayer } from './target.js';

/**
 * A tensor of a model's graph: output `output` of the layer named `layer` (an input layer's name for a model
 * input). Surgery and BatchNorm folding keep the names of the layers they copy, so a reference found in one
 * model names the same value in a rewritten copy of it, wherever the rewrite did not reach.
 */
export interface TensorRef {
  layer: string;
  output: number;
}

/** A part of a model as a model of its own; see {@link cutModel}. */
export interface ModelCut {
  /** Computes the part's outputs from `inputs`; owns its weights (dispose it when done). */
  model: LayersModel;
  /** The tensors of the source model that `model`'s inputs stand for, in the order of `model.inputs`. */
  inputs: TensorRef[];
}

/** Where the part ends and what is known: see {@link cutModel}. */
export interface CutOptions {
  /** Tensors whose values are known; the part starts at those its outputs depend on. */
  inputs: readonly TensorRef[];
  /** Tensors the part computes; default the model's outputs. */
  outputs?: readonly TensorRef[];
}

function refOf(model: LayersModel, tensor: SymbolicTensor): TensorRef {
  return {
    layer: tensor.sourceLayer.name,
    output: nodeInModel(model, tensor.sourceLayer).outputTensors.indexOf(tensor),
  };
}

function tensorOf(model: LayersModel, ref: TensorRef): SymbolicTensor {
  const layer = findLayer(model, ref.layer);
  const tensor = nodeInModel(model, layer).outputTensors[ref.output];
  if (tensor === undefined) {
    throw new UnsupportedModelError(ref.layer, `it has no output ${ref.output}`);
  }
  return tensor;
}

/**
 * The tensors the part of `model` downstream of `layers` (those layers and every layer that reads, directly or
 * not, one of their outputs) takes from the rest of the graph: the inputs of its layers computed outside it,
 * model inputs included, and model outputs computed outside it, in graph order. Rewriting the layers changes
 * no tensor outside the part, so with these tensors' values computed once, {@link cutModel} runs any rewritten
 * copy of the model from them. In a residual block, for its first convolution that is the block's input; for
 * its second, the first one's activation and the skip tensor.
 *
 * A layer of a nested sub-model (`backbone/conv1`) counts as the whole sub-model, the layer of the model it is in.
 *
 * @throws UnknownLayerError for a name that is no layer of the model.
 */
export function downstreamFrontier(model: LayersModel, layers: readonly string[]): TensorRef[] {
  model = graphOf(model);
  // A layer of a nested sub-model is downstream of the frontier of that sub-model as a whole.
  const part = new Set<Layer>(layers.map((name) => outermostLayer(findPlaced(model, name))));
  const computedInside = (tensor: SymbolicTensor) => part.has(tensor.sourceLayer);
  // model.layers is in topological order (producers first), so one pass finds every downstream layer.
  for (const layer of model.layers) {
    if (model.inputLayers.includes(layer) || part.has(layer)) continue;
    if (nodeInModel(model, layer).inputTensors.some(computedInside)) part.add(layer);
  }
  const frontier: SymbolicTensor[] = [];
  const read = (tensor: SymbolicTensor) => {
    if (!computedInside(tensor) && !frontier.includes(tensor)) frontier.push(tensor);
  };
  for (const layer of model.layers) {
    if (part.has(layer) && !model.inputLayers.includes(layer))
      nodeInModel(model, layer).inputTensors.forEach(read);
  }
  model.outputs.forEach(read);
  return frontier.map((tensor) => refOf(model, tensor));
}

/**
 * The part of `model` that computes `outputs` (default the model's outputs) from known tensors, as a new
 * model: its inputs stand for the known tensors the outputs depend on (listed in `inputs` of the result, in the
 * order given), and it holds copies of exactly the layers between, with their weights, sharing no variable
 * with `model`. Feed it the values those tensors have in `model`, or in any copy of `model` rewritten only
 * downstream of them (see {@link downstreamFrontier}), and it returns what that model returns. Input layers
 * take the name of the layer whose output they stand for (`<layer>.output<i>` for outputs after the first).
 *
 * @throws UnsupportedModelError when an output depends on a model input that is not among the known tensors,
 *   or for a layer the graph rebuild cannot copy (see `inferenceModel`).
 * @throws UnknownLayerError for a reference to a layer the model does not have.
 *
 * @example
 * ```ts
 * const frontier = downstreamFrontier(model, ['stage2.block1.conv2']);
 * const prefix = cutModel(model, { inputs: [{ layer: model.inputLayers[0].name, output: 0 }], outputs: frontier });
 * const values = prefix.model.predict(images); // computed once
 * const suffix = cutModel(rewritten, { inputs: frontier }); // rewritten: that layer decomposed
 * const logits = suffix.model.predict(values);
 * ```
 */
export function cutModel(model: LayersModel, options: CutOptions): ModelCut {
  model = graphOf(model);
  const known = new Map(options.inputs.map((ref) => [tensorOf(model, ref), ref]));
  const outputs = options.outputs?.map((ref) => tensorOf(model, ref)) ?? model.outputs;
  const layers = new Set<Layer>();
  const used = new Set<SymbolicTensor>();
  const pending = [...outputs];
  for (let tensor = pending.pop(); tensor !== undefined; tensor = pending.pop()) {
    if (known.has(tensor)) {
      used.add(tensor);
      continue;
    }
    const layer = tensor.sourceLayer;
    if (model.inputLayers.includes(layer)) {
      throw new UnsupportedModelError(
        layer.name,
        'the cut needs this model input, which is not among the known tensors',
      );
    }
    if (layers.has(layer)) continue;
    layers.add(layer);
    pending.push(...nodeInModel(model, layer).inputTensors);
  }
  const inputs = [...known].filter(([tensor]) => used.has(tensor));
  const cut = rebuildGraph(model, () => undefined, {
    inputs: inputs.map(([tensor]) => tensor),
    inputNames: inputs.map(([, ref]) => (ref.output === 0 ? ref.layer : `${ref.layer}.output${ref.output}`)),
    outputs,
    layers,
  });
  return { model: cut, inputs: inputs.map(([, ref]) => ref) };
}
