// Layers surgery rewrites through the plain Conv2D they equal or contain: a Conv1D (a Conv2D over a 1×L image)
// and the 1×1 pointwise step of a SeparableConv2D. The strategy sees a genuine stock Conv2D, so every strategy
// that rewrites Conv2D layers applies to them without code of its own; surgery puts stock layers around its
// replacement (Reshapes, or the kept depthwise step).
import { reshape, type Tensor, tidy } from '@tensorflow/tfjs-core';
import { model as functionalModel, input, layers, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { convCost, withConv } from './cost.js';
import type { ConvShape, Layer, LayerCost, TargetLayer } from './strategy.js';
import { describeLayer, type GraphNode, nodeInModel, type PlacedLayer } from './target.js';

/** A stock layer (unbuilt) that surgery applies around a strategy's replacement, and its weights. */
export interface StockPart {
  layer: Layer;
  /** Its weights, in the order of its `getWeights()` once built (empty for a weightless layer); surgery disposes them. */
  weights: Tensor[];
}

/**
 * A layer that is not itself a plain `Conv2D`, seen as one: what the strategy rewrites, and the stock layers
 * that go before and after the strategy's layers so that together they compute what the layer computed.
 */
export interface Conv2DView {
  /**
   * What the strategy sees: a stock `Conv2D` (built on an input of the right shape, named as the layer) whose
   * kernel, bias, activation, regularisers and constraints are those of the part it stands for. Its tensors are
   * that Conv2D's own weights, which {@link Conv2DView.dispose} releases.
   */
  target: TargetLayer;
  /** Output shape of that Conv2D, which the strategy's layers must give. */
  outputShape: readonly (number | null)[];
  /** Cost of the stock layers around the strategy's (the kept depthwise step), counted in `before` and `after`. */
  keptCost: LayerCost;
  /** What the report says about the rewrite (e.g. that the depthwise step is kept and counted), if anything. */
  note?: string;
  /** Fresh stock layers to apply before and after the strategy's, with copies of their weights. */
  stockParts(): { before: StockPart[]; after: StockPart[] };
  /** Releases the Conv2D's weights; call once, when the rewrite is done or abandoned. */
  dispose(): void;
}

/** The regulariser and constraint slots of a stock layer, by name (tfjs-layers keeps them as fields). */
type Slots = Record<string, unknown>;
const slot = (layer: Layer, name: string) => {
  const value = (layer as unknown as Slots)[name];
  return value === null || value === undefined ? undefined : value;
};

/**
 * A built stock `Conv2D` standing for part of `original`: applied to a symbolic input of `inputShape` (so it has
 * the geometry surgery and the strategy read), holding `weights` (copied), with the original's `trainable` and
 * the regularisers and constraints `slots` names (Conv2D slot → the original's), which surgery then carries over
 * to the strategy's layers as it does for a Conv2D.
 */
function standIn(
  original: Layer,
  path: string,
  config: Parameters<typeof layers.conv2d>[0],
  inputShape: (number | null)[],
  weights: Tensor[],
  slots: Record<string, string>,
): { target: TargetLayer; outputShape: (number | null)[] } {
  const carried = Object.fromEntries(
    Object.entries(slots)
      // The activity regulariser is set once the layer is applied: tfjs refuses a symbolic call with one.
      .filter(([own]) => own !== 'activityRegularizer')
      .map(([own, theirs]) => [own, slot(original, theirs)]),
  );
  const conv = layers.conv2d({
    ...config,
    ...carried,
    name: original.name,
    activation: original.getConfig().activation as Parameters<typeof layers.conv2d>[0]['activation'],
    trainable: original.trainable,
  });
  conv.setFastWeightInitDuringBuild(true); // zeros, not random draws: the weights are set below
  const x = input({ batchShape: inputShape });
  const y = conv.apply(x) as SymbolicTensor;
  conv.setWeights(weights);
  const activity = slots.activityRegularizer;
  if (activity !== undefined)
    (conv as unknown as Slots).activityRegularizer = slot(original, activity) ?? null;
  const target = describeLayer(functionalModel({ inputs: x, outputs: y }), conv.name);
  return { target: { ...target, name: path }, outputShape: y.shape };
}

const CONV_SLOTS = {
  kernelRegularizer: 'kernelRegularizer',
  kernelConstraint: 'kernelConstraint',
  biasRegularizer: 'biasRegularizer',
  biasConstraint: 'biasConstraint',
  activityRegularizer: 'activityRegularizer',
};

/** Conv1D over [L, C_in] = Reshape to [1, L, C_in] → Conv2D with kernel 1×k → Reshape to [L', C_out]. */
function conv1dView(placed: PlacedLayer, node: GraphNode, shape: ConvShape): Conv2DView {
  const { layer, path } = placed;
  const [, length, inChannels] = node.inputTensors[0]!.shape;
  const [, outLength, outChannels] = node.outputTensors[0]!.shape;
  const [kernel, ...bias] = layer.getWeights();
  const kernel4d = tidy(() => reshape(kernel!, [1, ...kernel!.shape]));
  let view: { target: TargetLayer; outputShape: (number | null)[] };
  try {
    view = standIn(
      layer,
      path,
      {
        filters: shape.outChannels,
        kernelSize: [...shape.kernelSize],
        strides: [...shape.strides],
        dilationRate: [...shape.dilation] as [number, number],
        padding: shape.padding,
        useBias: shape.useBias,
      },
      [null, 1, length ?? null, inChannels ?? null],
      [kernel4d, ...bias],
      CONV_SLOTS,
    );
  } finally {
    kernel4d.dispose();
  }
  // An unknown length stays unknown (-1: tfjs infers it from the tensor's size at run time).
  const reshapeTo = (name: string, targetShape: number[]): StockPart => ({
    layer: layers.reshape({ name, targetShape, trainable: layer.trainable }),
    weights: [],
  });
  return {
    ...view,
    keptCost: { params: 0, forwardMacs: 0, backwardMacs: 0 },
    stockParts: () => ({
      before: [reshapeTo(`${layer.name}_to2d`, [1, length ?? -1, inChannels!])],
      after: [reshapeTo(`${layer.name}_to1d`, [outLength ?? -1, outChannels!])],
    }),
    dispose: () => view.target.layer.dispose(),
  };
}

/**
 * SeparableConv2D = a DepthwiseConv2D (k×k, strides, padding, dilation, depth multiplier d; no bias) → a 1×1
 * Conv2D C_in·d → C_out (bias, activation). The strategy rewrites the 1×1 step; the depthwise step is kept.
 */
function separableView(placed: PlacedLayer, node: GraphNode): Conv2DView {
  const { layer, path } = placed;
  const config = layer.getConfig();
  const [depthwiseKernel, pointwiseKernel, ...bias] = layer.getWeights();
  const [, height, width] = node.outputTensors[0]!.shape;
  const [, , mid, filters] = pointwiseKernel!.shape as [number, number, number, number];
  const view = standIn(
    layer,
    path,
    { filters, kernelSize: 1, padding: 'valid', useBias: config.useBias === true },
    [null, height ?? null, width ?? null, mid],
    [pointwiseKernel!, ...bias],
    { ...CONV_SLOTS, kernelRegularizer: 'pointwiseRegularizer', kernelConstraint: 'pointwiseConstraint' },
  );
  const pointwise = view.target.conv!;
  const [kh, kw] = depthwiseKernel!.shape as [number, number];
  // Each of the C_in·d depthwise outputs is one k×k filter over one channel: a k×k convolution 1 → C_in·d in cost.
  const keptCost = convCost(
    withConv(pointwise, { kernelSize: [kh, kw], inChannels: 1, outChannels: mid, useBias: false }),
  );
  const depthwiseName = `${layer.name}_depthwise`;
  return {
    ...view,
    keptCost,
    note:
      `its depthwise step is kept as the DepthwiseConv2D '${depthwiseName}' and the strategy rewrote its 1×1 pointwise step; ` +
      `before and after both count the depthwise step (${keptCost.params} params, ${keptCost.forwardMacs} forward MACs)`,
    stockParts: () => ({
      before: [
        {
          layer: layers.depthwiseConv2d({
            name: depthwiseName,
            kernelSize: [kh, kw],
            strides: config.strides as [number, number],
            padding: config.padding as 'same' | 'valid',
            dilationRate: config.dilationRate as [number, number],
            depthMultiplier: mid / depthwiseKernel!.shape[2]!,
            useBias: false,
            depthwiseRegularizer: slot(layer, 'depthwiseRegularizer') as undefined,
            depthwiseConstraint: slot(layer, 'depthwiseConstraint') as undefined,
            trainable: layer.trainable,
          }),
          weights: [depthwiseKernel!.clone()],
        },
      ],
      after: [],
    }),
    dispose: () => view.target.layer.dispose(),
  };
}

/**
 * The {@link Conv2DView} of a channels-last `Conv1D` (same or valid padding) or `SeparableConv2D` where `placed`
 * calls it, or null for a layer that is rewritten as it is (or not at all; `unsupportedReason` says why). The
 * caller owns the view: dispose it.
 */
export function conv2dView(placed: PlacedLayer, target: TargetLayer): Conv2DView | null {
  const node = nodeInModel(placed.graph, placed.layer);
  if (target.className === 'Conv1D' && target.conv !== null) return conv1dView(placed, node, target.conv);
  if (target.className === 'SeparableConv2D') return separableView(placed, node);
  return null;
}
