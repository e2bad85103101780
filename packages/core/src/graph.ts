// Rebuilding a functional graph layer by layer, shared by surgery (decompositions), BatchNorm folding and
// cutting a graph between inner tensors.
import { dispose } from '@tensorflow/tfjs-core';
import {
  model as functionalModel,
  input,
  type LayersModel,
  type SymbolicTensor,
} from '@tensorflow/tfjs-layers';
import { cloneLayer, copyWeights } from './clone.js';
import { UnsupportedModelError } from './errors.js';
import type { Layer } from './strategy.js';
import { type GraphNode, graphOf, isNestedModel, nodeInModel, PATH_SEPARATOR } from './target.js';

/**
 * How one layer of the original graph appears in the rebuilt one: the tensors that stand for its outputs
 * there (new layers applied to `inputs`, or `inputs` themselves to drop the layer), or `undefined` to copy it
 * as it is. Every layer it builds goes to `built` as soon as it owns weights, so a failure can dispose them.
 */
export type LayerRewrite = (
  layer: Layer,
  node: GraphNode,
  inputs: SymbolicTensor[],
  built: Layer[],
) => SymbolicTensor[] | undefined;

/** Calls `layer` on `inputs` the way `node` called the original. */
export function callLike(layer: Layer, node: GraphNode, inputs: SymbolicTensor[]): SymbolicTensor[] {
  const output = layer.apply(inputs.length === 1 ? inputs[0]! : inputs, node.callArgs);
  return (Array.isArray(output) ? output : [output]) as SymbolicTensor[];
}

/** A copy of `layer` (same class, config and name, copied weights) called on `inputs` as `node` called it. */
function copyLayer(
  layer: Layer,
  node: GraphNode,
  inputs: SymbolicTensor[],
  built: Layer[],
): SymbolicTensor[] {
  const clone = cloneLayer(layer);
  clone.setFastWeightInitDuringBuild(true); // zeros, not random draws: the weights are overwritten below
  const outputs = callLike(clone, node, inputs);
  built.push(clone);
  const weights = copyWeights(layer);
  clone.setWeights(weights);
  dispose(weights);
  return outputs;
}

function disposeBuilt(layers: readonly Layer[]): void {
  for (const layer of layers) {
    try {
      layer.dispose();
    } catch {
      // Already disposed or never used: nothing of it to release.
    }
  }
}

/** A part of a graph to rebuild on its own: from some of its tensors to others, through the layers between. */
export interface GraphPart {
  /** Tensors of the graph that become the new model's inputs, in order. */
  inputs: readonly SymbolicTensor[];
  /** Names of the new model's input layers, one per input. */
  inputNames: readonly string[];
  /** Tensors of the graph that become the new model's outputs. */
  outputs: readonly SymbolicTensor[];
  /** Every layer computing `outputs` from `inputs` (the only layers rebuilt). */
  layers: ReadonlySet<Layer>;
}

/**
 * A new functional model with the graph of `model` (a functional model, see `graphOf`), or of `part` of it,
 * each layer rewritten by `rewrite` or copied with its weights, so the result shares no variable with the
 * original. If anything throws, every layer built so far is disposed.
 */
export function rebuildGraph(model: LayersModel, rewrite: LayerRewrite, part?: GraphPart): LayersModel {
  const built: Layer[] = [];
  try {
    const tensors = new Map<SymbolicTensor, SymbolicTensor>();
    const lookup = (t: SymbolicTensor, layer: Layer) => {
      const mapped = tensors.get(t);
      if (mapped === undefined) {
        throw new UnsupportedModelError(
          layer.name,
          `its input '${t.name}' comes from outside the model's graph`,
        );
      }
      return mapped;
    };
    const inputs = (part?.inputs ?? model.inputs).map((original, i) => {
      const fresh = input({
        batchShape: original.shape,
        dtype: original.dtype,
        name: part?.inputNames[i] ?? original.sourceLayer.name,
      });
      tensors.set(original, fresh);
      return fresh;
    });
    // model.layers is in topological order (tfjs sorts containers' layers by depth, inputs first).
    for (const layer of model.layers) {
      if (model.inputLayers.includes(layer) || (part !== undefined && !part.layers.has(layer))) continue;
      const node = nodeInModel(model, layer);
      const layerInputs = node.inputTensors.map((t) => lookup(t, layer));
      const outputs = rewrite(layer, node, layerInputs, built) ?? copyLayer(layer, node, layerInputs, built);
      node.outputTensors.forEach((original, i) => {
        const mapped = outputs[i];
        if (mapped === undefined) {
          throw new UnsupportedModelError(
            layer.name,
            `its copy returned ${outputs.length} outputs, expected more`,
          );
        }
        tensors.set(original, mapped);
      });
    }
    const outputs = (part?.outputs ?? model.outputs).map((t) => lookup(t, t.sourceLayer));
    return functionalModel({ inputs, outputs, name: model.name });
  } catch (error) {
    disposeBuilt(built);
    throw error;
  }
}

/**
 * Like {@link rebuildGraph} over the whole of `model`, but a nested sub-model for which `descend` is true is itself
 * rebuilt the same way (recursively, as a functional model of the same name) and called where it was; the
 * others are handed to `rewrite` like any layer. `rewrite` also gets the path prefix of the graph the layer is in
 * (`''` for the model's own layers, `backbone/` inside the sub-model `backbone`).
 */
export function rebuildNested(
  model: LayersModel,
  rewrite: (...args: [...Parameters<LayerRewrite>, prefix: string]) => SymbolicTensor[] | undefined,
  descend: (subModel: LayersModel) => boolean,
  prefix = '',
): LayersModel {
  return rebuildGraph(model, (layer, node, inputs, built) => {
    if (isNestedModel(layer) && descend(layer)) {
      const inner = rebuildNested(
        graphOf(layer),
        rewrite,
        descend,
        `${prefix}${layer.name}${PATH_SEPARATOR}`,
      );
      built.push(inner);
      return callLike(inner, node, inputs);
    }
    return rewrite(layer, node, inputs, built, prefix);
  });
}
