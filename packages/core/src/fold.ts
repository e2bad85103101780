import * as tf from '@tensorflow/tfjs-core';
import { type LayersModel, layers, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { UnsupportedModelError } from './errors.js';
import { callLike, rebuildNested } from './graph.js';
import type { Layer } from './strategy.js';
import { type GraphNode, graphOf, isNestedModel, nodeInModel } from './target.js';

/** A stock `Conv2D`, the `BatchNormalization` folded into it, and the relu fused into it, if any. */
interface Fold {
  conv: Layer;
  batchNorm: Layer;
  relu: Layer | null;
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
 * The one layer that uses the output of `layer`, or null when the output is also a model output, has no or
 * several users, or the layer has several outputs.
 */
function onlyUser(model: LayersModel, layer: Layer, users: Map<SymbolicTensor, Layer[]>): Layer | null {
  const [output, ...more] = nodeInModel(model, layer).outputTensors;
  if (output === undefined || more.length > 0 || model.outputs.includes(output)) return null;
  const found = users.get(output) ?? [];
  return found.length === 1 ? found[0]! : null;
}

function isFoldableConv(layer: Layer): boolean {
  const config = layer.getConfig();
  return (
    layer.getClassName() === 'Conv2D' &&
    config.dataFormat === 'channelsLast' &&
    (config.activation ?? 'linear') === 'linear'
  );
}

/** A BatchNormalization over the channels of NHWC data that uses its moving statistics in inference. */
function normalisesChannels(model: LayersModel, layer: Layer): boolean {
  const axis = layer.getConfig().axis;
  return (
    layer.getClassName() === 'BatchNormalization' &&
    (axis === -1 || axis === 3) &&
    nodeInModel(model, layer).callArgs?.training !== true
  );
}

function isPlainRelu(layer: Layer): boolean {
  const config = layer.getConfig();
  if (layer.getClassName() === 'Activation') return config.activation === 'relu';
  return layer.getClassName() === 'ReLU' && config.maxValue == null;
}

/** Every Conv2D → BatchNormalization (→ relu) chain of the model that can be folded, by conv. */
function findFolds(model: LayersModel): Map<Layer, Fold> {
  const users = usersOf(model);
  const folds = new Map<Layer, Fold>();
  for (const conv of model.layers) {
    if (model.inputLayers.includes(conv) || !isFoldableConv(conv)) continue;
    const batchNorm = onlyUser(model, conv, users);
    if (batchNorm === null || !normalisesChannels(model, batchNorm)) continue;
    const after = onlyUser(model, batchNorm, users);
    const relu = after !== null && isPlainRelu(after) ? after : null;
    folds.set(conv, { conv, batchNorm, relu });
  }
  return folds;
}

/**
 * Kernel and bias of `conv` followed by `batchNorm` in inference mode: with s = γ / √(σ² + ε), the kernel's
 * output channel c is scaled by s[c] and the bias becomes (b − μ)·s + β. Weights follow the Keras order
 * (gamma if `scale`, beta if `center`, moving mean, moving variance).
 */
function foldedWeights(conv: Layer, batchNorm: Layer): tf.Tensor[] {
  return tf.tidy(() => {
    const [kernel, bias] = conv.getWeights();
    const config = batchNorm.getConfig();
    const statistics = [...batchNorm.getWeights()];
    const gamma = config.scale === false ? null : statistics.shift();
    const beta = config.center === false ? null : statistics.shift();
    const [mean, variance] = statistics;
    if (kernel === undefined || mean === undefined || variance === undefined) {
      throw new UnsupportedModelError(
        conv.name,
        `it or '${batchNorm.name}' has no weights (is the model built?)`,
      );
    }
    const inverseDeviation = tf.rsqrt(tf.add(variance, Number(config.epsilon)));
    const scale = gamma ? tf.mul(gamma, inverseDeviation) : inverseDeviation;
    const centred = tf.sub(bias ?? tf.zerosLike(mean), mean);
    const shifted = tf.mul(centred, scale);
    return [tf.mul(kernel, scale), beta ? tf.add(shifted, beta) : shifted];
  });
}

/** The folded convolution: the conv's config with a bias (and the fused relu), called where the conv was. */
function foldedConv(fold: Fold, node: GraphNode, inputs: SymbolicTensor[], built: Layer[]): SymbolicTensor[] {
  // The serialized config is what the constructor takes (as in `fromConfig`).
  const config = fold.conv.getConfig() as unknown as Parameters<typeof layers.conv2d>[0];
  const conv = layers.conv2d({ ...config, useBias: true, activation: fold.relu ? 'relu' : 'linear' });
  conv.setFastWeightInitDuringBuild(true); // the weights are overwritten below
  const outputs = callLike(conv, node, inputs);
  built.push(conv);
  const weights = foldedWeights(fold.conv, fold.batchNorm);
  try {
    conv.setWeights(weights);
  } finally {
    tf.dispose(weights);
  }
  return outputs;
}

/**
 * A copy of `model` for inference with every BatchNormalization folded into the stock `Conv2D` before it:
 * where a Conv2D (channels-last, no activation of its own) is used only by a BatchNormalization over its
 * channels, the pair becomes one Conv2D whose kernel and bias include the normalisation with the moving
 * mean and variance, gamma, beta and epsilon; where that BatchNormalization is used only by a relu
 * (`Activation` relu or `ReLU` without a cap), the relu becomes the conv's activation, so a backend runs
 * conv + bias + relu as one fused kernel. The folded conv keeps the conv's name; the BatchNormalization and
 * relu layers are gone. Every other layer, custom ones (e.g. decomposed convolutions followed by a
 * BatchNormalization) included, is copied with its weights.
 *
 * The result computes what `model` computes in inference mode (up to float rounding) and shares no variable
 * with it; `model` is left untouched. It is for evaluation only: training it would no longer normalise with
 * batch statistics. Chains inside nested sub-models are folded too (the sub-model is rebuilt as a functional
 * model of the same name). Dispose it when done. Throws `UnsupportedModelError` for a layer called several times in
 * the model (shared weights), and for a custom layer class not registered for serialization.
 *
 * @example
 * ```ts
 * const inference = foldBatchNorm(model);
 * const logits = inference.predict(images);
 * inference.dispose();
 * ```
 */
export function foldBatchNorm(model: LayersModel): LayersModel {
  model = graphOf(model);
  // Inside nested sub-models too: each graph's chains are found in that graph, and the sub-models holding one
  // are rebuilt around it.
  const folds = new Map<Layer, Fold>();
  const descend = new Set<LayersModel>();
  const collect = (graph: LayersModel, containers: readonly LayersModel[]) => {
    for (const [conv, fold] of findFolds(graph)) {
      folds.set(conv, fold);
      for (const container of containers) descend.add(container);
    }
    for (const layer of graph.layers) {
      if (isNestedModel(layer)) collect(graphOf(layer), [...containers, layer]);
    }
  };
  collect(model, []);
  const dropped = new Set(
    [...folds.values()].flatMap((fold) => (fold.relu ? [fold.batchNorm, fold.relu] : [fold.batchNorm])),
  );
  return rebuildNested(
    model,
    (layer, node, inputs, built) => {
      const fold = folds.get(layer);
      if (fold !== undefined) return foldedConv(fold, node, inputs, built);
      // Its input is already the folded conv's output (normalised, and through the relu when fused).
      return dropped.has(layer) ? inputs : undefined;
    },
    (subModel) => descend.has(subModel),
  );
}
