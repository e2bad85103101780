// The eval path: a copy of a model for inference, each BatchNormalization folded into the layer before it and the
// activation after them fused into that layer, so that a backend runs conv + bias + activation as one kernel.
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { cloneLayer } from './clone.js';
import { UnsupportedModelError } from './errors.js';
import { callLike, rebuildNested } from './graph.js';
import type { Layer } from './strategy.js';
import { type GraphNode, graphOf, isNestedModel, nodeInModel, PATH_SEPARATOR } from './target.js';

/**
 * What a layer absorbs: per output channel c, y'[c] = activation(scale[c]·y[c] + shift[c]), y being the layer's
 * output. The tensors belong to core (read them, never dispose them).
 */
export interface ChannelAffine {
  /** `[C_out]`: γ/√(σ² + ε) of the BatchNormalization, or ones when only an activation is fused. */
  scale: tf.Tensor1D;
  /** `[C_out]`: β − μ·scale, or zeros. */
  shift: tf.Tensor1D;
  /** A tfjs-layers activation name (`relu`, `relu6`, …) to apply after the affine, `linear` for none. */
  activation: string;
}

/**
 * A layer's copy with an affine folded in: an unbuilt layer of a class registered for serialization, with the
 * original's name, and its weights in `getWeights()` order (core sets them on the built layer, then disposes
 * them); `note` says how, when worth telling (e.g. a change of form). Or why the layer cannot absorb it.
 */
export type AffineFold = { layer: Layer; weights: tf.Tensor[]; note?: string } | { reason: string };

/**
 * A custom layer that can absorb a per-output-channel affine and an activation after it (a strategy's layer,
 * e.g. `BasisConv2D`), so that {@link inferenceModel} folds a BatchNormalization after it as it does for stock
 * convolutions. Return `{ reason }` for an activation the layer cannot apply; the affine is then offered alone.
 */
export interface AffineFoldableLayer {
  foldAffine(affine: ChannelAffine): AffineFold;
}

/** One layer of the inference copy that absorbed what followed it. */
export interface InferenceFold {
  /** The layer's path (`<sub-model>/<layer>` inside a nested model); the copy keeps its name. */
  layer: string;
  className: string;
  /** The BatchNormalization folded into it (its path), or null when only an activation was fused. */
  batchNorm: string | null;
  /** The activation layer fused into it (its path), or null. */
  activation: string | null;
  /** The layer's own word on how it absorbed the affine (`AffineFold.note`). */
  note?: string;
}

/** A BatchNormalization the inference copy still runs, and why. */
export interface UnfoldedBatchNorm {
  batchNorm: string;
  reason: string;
}

/** The inference copy of a model, and what was folded into what. */
export interface InferenceModel {
  /** A new model (the original is untouched); dispose it when done. */
  model: LayersModel;
  folded: InferenceFold[];
  unfolded: UnfoldedBatchNorm[];
}

/** A conv-like layer and what follows it that it is to absorb. */
interface Chain {
  batchNorm: Layer | null;
  activation: { layer: Layer; name: string } | null;
}

/** For each stock class that absorbs an affine: the index of the weight whose last axis is the output channels. */
const STOCK_KERNEL: Readonly<Record<string, number>> = {
  Conv1D: 0,
  Conv2D: 0,
  Dense: 0,
  DepthwiseConv2D: 0,
  SeparableConv2D: 1, // the pointwise kernel (after the depthwise one)
};

function isAffineFoldable(layer: Layer): layer is Layer & AffineFoldableLayer {
  return typeof (layer as Partial<AffineFoldableLayer>).foldAffine === 'function';
}

/** Why nothing can be folded into `layer`, or null when something can. */
function refusal(layer: Layer): string | null {
  const described = `'${layer.name}' (${layer.getClassName()})`;
  if (isAffineFoldable(layer)) return null;
  if (STOCK_KERNEL[layer.getClassName()] === undefined) {
    return isNestedModel(layer)
      ? `its input comes from the sub-model ${described}`
      : `its input comes from ${described}, which has no foldAffine() (core's AffineFoldableLayer)`;
  }
  const config = layer.getConfig();
  if ((config.dataFormat ?? 'channelsLast') !== 'channelsLast') return `${described} is channelsFirst`;
  const activation = config.activation ?? 'linear';
  return activation === 'linear' ? null : `${described} applies ${String(activation)} itself`;
}

/** The layers that take each tensor of the model's graph as an input. */
function usersOf(model: LayersModel): Map<SymbolicTensor, Layer[]> {
  const users = new Map<SymbolicTensor, Layer[]>();
  for (const layer of model.layers) {
    if (model.inputLayers.includes(layer)) continue;
    for (const tensor of nodeInModel(model, layer).inputTensors) {
      users.set(tensor, [...(users.get(tensor) ?? []), layer]);
    }
  }
  return users;
}

/**
 * The one layer that uses the output of `layer`, or why there is none: the output is also a model output, has
 * no or several users, or the layer has several outputs.
 */
function onlyUser(
  model: LayersModel,
  layer: Layer,
  users: Map<SymbolicTensor, Layer[]>,
): Layer | { reason: string } {
  const [output, ...more] = nodeInModel(model, layer).outputTensors;
  if (output === undefined || more.length > 0) return { reason: `'${layer.name}' has several outputs` };
  if (model.outputs.includes(output)) return { reason: `the output of '${layer.name}' is a model output` };
  const found = users.get(output) ?? [];
  if (found.length === 1) return found[0]!;
  return { reason: `the output of '${layer.name}' also feeds ${found.map((l) => `'${l.name}'`).join(', ')}` };
}

/** Why a BatchNormalization does not normalise the channels with its moving statistics, or null when it does. */
function batchNormRefusal(model: LayersModel, batchNorm: Layer): string | null {
  const node = nodeInModel(model, batchNorm);
  const rank = node.inputTensors[0]?.shape.length ?? 0;
  const axis = Number(batchNorm.getConfig().axis);
  if (axis !== -1 && axis !== rank - 1) return `it normalises axis ${axis}, not the channels (the last axis)`;
  return node.callArgs?.training === true ? 'it is called with training: true' : null;
}

/** The activation name a layer applies, when it is a layer that only applies one a conv-like layer can take. */
function fusableActivation(layer: Layer): string | null {
  const config = layer.getConfig();
  if (layer.getClassName() === 'Activation') return String(config.activation);
  if (layer.getClassName() !== 'ReLU') return null;
  if (config.maxValue == null) return 'relu';
  return config.maxValue === 6 ? 'relu6' : null;
}

/** The activation after `layer` that it can absorb: its one user, when that applies an activation only. */
function activationAfter(model: LayersModel, layer: Layer, users: Map<SymbolicTensor, Layer[]>) {
  const after = onlyUser(model, layer, users);
  if ('reason' in after) return null;
  const name = fusableActivation(after);
  return name === null ? null : { layer: after, name };
}

/**
 * Every chain of `model` to fold, by its conv-like layer: layer → BatchNormalization (→ activation), and layer →
 * activation; and each BatchNormalization that stays, with the reason.
 */
function findChains(model: LayersModel, prefix: string, unfolded: UnfoldedBatchNorm[]): Map<Layer, Chain> {
  const users = usersOf(model);
  const chains = new Map<Layer, Chain>();
  for (const batchNorm of model.layers) {
    if (batchNorm.getClassName() !== 'BatchNormalization') continue;
    const leave = (reason: string) => unfolded.push({ batchNorm: `${prefix}${batchNorm.name}`, reason });
    const own = batchNormRefusal(model, batchNorm);
    if (own !== null) {
      leave(own);
      continue;
    }
    const producer = nodeInModel(model, batchNorm).inboundLayers[0]!;
    if (model.inputLayers.includes(producer)) {
      leave('its input is a model input');
      continue;
    }
    const cannot = refusal(producer);
    const user = cannot === null ? onlyUser(model, producer, users) : { reason: cannot };
    if ('reason' in user) leave(user.reason);
    else chains.set(producer, { batchNorm, activation: activationAfter(model, batchNorm, users) });
  }
  for (const layer of model.layers) {
    if (model.inputLayers.includes(layer) || chains.has(layer) || refusal(layer) !== null) continue;
    const activation = activationAfter(model, layer, users);
    if (activation !== null) chains.set(layer, { batchNorm: null, activation });
  }
  return chains;
}

/**
 * The affine of a BatchNormalization in inference mode, s = γ/√(σ² + ε) and t = β − μ·s (Keras weight order:
 * gamma if `scale`, beta if `center`, moving mean, moving variance), or the identity over `channels`.
 */
function affineOf(batchNorm: Layer | null, channels: number): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
  return tf.tidy(() => {
    if (batchNorm === null) return { scale: tf.ones([channels]), shift: tf.zeros([channels]) };
    const config = batchNorm.getConfig();
    const statistics = [...batchNorm.getWeights()];
    const gamma = config.scale === false ? null : statistics.shift();
    const beta = config.center === false ? null : statistics.shift();
    const [mean, variance] = statistics;
    if (mean === undefined || variance === undefined) {
      throw new UnsupportedModelError(batchNorm.name, 'it has no moving statistics (is the model built?)');
    }
    const inverseDeviation = tf.rsqrt(tf.add(variance, Number(config.epsilon)));
    const scale = (gamma ? tf.mul(gamma, inverseDeviation) : inverseDeviation) as tf.Tensor1D;
    const shifted = tf.neg(tf.mul(mean, scale));
    return { scale, shift: (beta ? tf.add(shifted, beta) : shifted) as tf.Tensor1D };
  });
}

/**
 * A stock layer with the affine folded in: the kernel's output channels scaled (a depthwise kernel's
 * `[C_in, multiplier]` are the output channels), the bias b·s + t, the activation set.
 */
function foldStock(layer: Layer, affine: ChannelAffine): AffineFold {
  const index = STOCK_KERNEL[layer.getClassName()]!;
  const weights = tf.tidy(() => {
    const own = layer.getWeights();
    const kernel = own[index];
    if (kernel === undefined)
      throw new UnsupportedModelError(layer.name, 'it has no kernel (is the model built?)');
    const scale =
      layer.getClassName() === 'DepthwiseConv2D'
        ? tf.reshape(affine.scale, kernel.shape.slice(-2))
        : affine.scale;
    const bias = own[index + 1] ?? tf.zerosLike(affine.shift);
    // Clones of the weights kept as they are: core disposes the fold's weights, and these are the layer's variables.
    const kept = own.slice(0, index).map((w) => w.clone());
    return [...kept, tf.mul(kernel, scale), tf.add(tf.mul(bias, affine.scale), affine.shift)];
  });
  return { layer: cloneLayer(layer, { useBias: true, activation: affine.activation }), weights };
}

function foldInto(layer: Layer, affine: ChannelAffine): AffineFold {
  return isAffineFoldable(layer) ? layer.foldAffine(affine) : foldStock(layer, affine);
}

/** Builds the fold's layer where `layer` was, sets its weights and checks it stands in for the layer. */
function placeFold(
  layer: Layer,
  fold: Extract<AffineFold, { layer: Layer }>,
  node: GraphNode,
  inputs: SymbolicTensor[],
  built: Layer[],
): SymbolicTensor[] {
  const copy = fold.layer;
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[copy.getClassName()];
  const invalid = (reason: string) =>
    new UnsupportedModelError(layer.name, `its foldAffine() returned a layer that ${reason}`);
  if (entry?.[0] !== copy.constructor) throw invalid(`is not registered for serialization`);
  if (copy.name !== layer.name) throw invalid(`is named '${copy.name}', not '${layer.name}'`);
  copy.setFastWeightInitDuringBuild(true); // the weights are overwritten below
  const outputs = callLike(copy, node, inputs);
  built.push(copy);
  copy.setWeights(fold.weights);
  const expected = node.outputTensors.map((t) => JSON.stringify(t.shape));
  if (JSON.stringify(outputs.map((t) => JSON.stringify(t.shape))) !== JSON.stringify(expected)) {
    throw invalid(
      `gives outputs of shape ${outputs.map((t) => JSON.stringify(t.shape)).join(', ')}, not ${expected}`,
    );
  }
  return outputs;
}

/**
 * The model as the product evaluates it: a copy for inference in which each BatchNormalization is folded into
 * the layer before it, and an activation after them fused into that layer, so a backend runs conv + bias +
 * activation as one kernel (tfjs-layers' `Conv2D` and `Dense` fuse relu, elu and linear). `decompose eval`, the
 * leaderboard's eval img/s, the sensitivity scan's calibration and the web page all run this copy.
 *
 * A BatchNormalization over the channels (moving statistics, not called in training mode) is folded when its
 * input is the only use of a conv-like layer's output (not a model output either) and that layer applies no
 * activation of its own: a stock `Conv2D`, `Conv1D`, `Dense`, `DepthwiseConv2D` or `SeparableConv2D` (its
 * pointwise kernel) — the kernel's output channels are scaled by s = γ/√(σ² + ε), the bias becomes
 * (b − μ)·s + β — or a custom layer that implements {@link AffineFoldableLayer} (a strategy's, e.g. `BasisConv2D`,
 * `BasisDense`; SVD's pairs are stock convolutions, whose second factor absorbs it). An `Activation` or `ReLU`
 * (no cap, or a cap of 6 as relu6) that is the only user of the BatchNormalization, or of such a layer without
 * one, becomes the layer's activation. Folded layers keep their names; the BatchNormalization and activation
 * layers are gone. Every other layer is copied with its weights. Chains inside nested sub-models are folded too
 * (the sub-model is rebuilt as a functional model of the same name).
 *
 * The copy computes what `model` computes in inference mode (up to float rounding), shares no variable with it
 * and is serializable (every class registered). It is for evaluation only: trained, it would no longer normalise
 * with batch statistics. `folded` lists what each layer absorbed, `unfolded` every BatchNormalization that stays
 * and why. Throws `UnsupportedModelError` for a layer called several times in the model (shared weights), a
 * custom class not registered for serialization, and a `foldAffine()` whose layer does not stand in for the
 * original (another name or output shape, an unregistered class).
 *
 * @example
 * ```ts
 * const { model: inference, unfolded } = inferenceModel(model);
 * const logits = inference.predict(images);
 * inference.dispose();
 * ```
 */
export function inferenceModel(model: LayersModel): InferenceModel {
  model = graphOf(model);
  const chains = new Map<Layer, Chain>();
  const descend = new Set<LayersModel>();
  const unfolded: UnfoldedBatchNorm[] = [];
  // Inside nested sub-models too: each graph's chains are found in that graph, and the sub-models holding one
  // are rebuilt around it.
  const collect = (graph: LayersModel, containers: readonly LayersModel[], prefix: string) => {
    for (const [layer, chain] of findChains(graph, prefix, unfolded)) {
      chains.set(layer, chain);
      for (const container of containers) descend.add(container);
    }
    for (const layer of graph.layers) {
      if (isNestedModel(layer)) {
        collect(graphOf(layer), [...containers, layer], `${prefix}${layer.name}${PATH_SEPARATOR}`);
      }
    }
  };
  collect(model, [], '');
  const folded: InferenceFold[] = [];
  const dropped = new Set<Layer>(); // filled as folds succeed, before the graph reaches the dropped layers
  const inference = rebuildNested(
    model,
    (layer, node, inputs, built, prefix) => {
      if (dropped.has(layer)) return inputs; // its input is already the folded layer's output
      const chain = chains.get(layer);
      if (chain === undefined) return undefined;
      const channels = node.outputTensors[0]?.shape.at(-1);
      const { scale, shift } = affineOf(chain.batchNorm, Number(channels));
      try {
        let activation = chain.activation;
        let fold = foldInto(layer, { scale, shift, activation: activation?.name ?? 'linear' });
        if ('reason' in fold && activation !== null) {
          activation = null; // the affine alone, the activation layer kept
          fold = foldInto(layer, { scale, shift, activation: 'linear' });
        }
        if ('reason' in fold || (chain.batchNorm === null && activation === null)) {
          if ('layer' in fold) tf.dispose(fold.weights);
          if (chain.batchNorm !== null && 'reason' in fold) {
            unfolded.push({
              batchNorm: `${prefix}${chain.batchNorm.name}`,
              reason: `'${layer.name}' (${layer.getClassName()}) does not absorb it: ${fold.reason}`,
            });
          }
          return undefined;
        }
        let outputs: SymbolicTensor[];
        try {
          outputs = placeFold(layer, fold, node, inputs, built);
        } finally {
          tf.dispose(fold.weights);
        }
        for (const absorbed of [chain.batchNorm, activation?.layer]) if (absorbed) dropped.add(absorbed);
        folded.push({
          layer: `${prefix}${layer.name}`,
          className: layer.getClassName(),
          batchNorm: chain.batchNorm && `${prefix}${chain.batchNorm.name}`,
          activation: activation && `${prefix}${activation.layer.name}`,
          ...(fold.note === undefined ? {} : { note: fold.note }),
        });
        return outputs;
      } finally {
        tf.dispose([scale, shift]);
      }
    },
    (subModel) => descend.has(subModel),
  );
  return { model: inference, folded, unfolded };
}
