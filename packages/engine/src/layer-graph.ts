import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';

/** A layer of a model, as `LayersModel.layers` lists it. */
export type ModelLayer = LayersModel['layers'][number];

/** One call of a layer in a model's graph: the symbolic tensors it read and wrote. */
export interface LayerCall {
  inputTensors: SymbolicTensor[];
  outputTensors: SymbolicTensor[];
}

/**
 * The calls of `layer` that tfjs-layers recorded as the model was built (its `inboundNodes`, which the public
 * typings keep protected): how the engine's training changes find a layer's inputs and readers.
 */
export function callsOf(layer: ModelLayer): LayerCall[] {
  return (layer as unknown as { inboundNodes: LayerCall[] }).inboundNodes;
}
