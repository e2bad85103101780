import type { Tensor, Tensor1D, Tensor2D, Tensor4D } from '@tensorflow/tfjs-core';
import type { layers } from '@tensorflow/tfjs-layers';
import type { z } from 'zod';
import type { LayerLowering } from './export.js';

/** A tfjs-layers layer (base class of every layer, including custom ones). */
export type Layer = layers.Layer;

/** Geometry of a 2-D convolution, independent of tfjs classes: what a cost model needs. */
export interface ConvShape {
  /** Kernel height and width. */
  kernelSize: readonly [number, number];
  inChannels: number;
  outChannels: number;
  strides: readonly [number, number];
  dilation: readonly [number, number];
  padding: 'same' | 'valid';
  useBias: boolean;
  /** Spatial size of the input (height, width), without the batch dimension. */
  inputSize: readonly [number, number];
  /** Spatial size of the output (height, width). */
  outputSize: readonly [number, number];
  /**
   * True when the spatial size of the layer's input is unknown (a fully convolutional model, e.g. a `[null, null, 3]`
   * input): `outputSize` is then `[1, 1]` and `inputSize` the strides, one output pixel's worth, so the MACs a cost
   * function computes from this shape are per output pixel rather than per image. Parameters are exact.
   */
  perOutputPixel?: boolean;
}

/**
 * Geometry of a fully connected (`Dense`) layer: y = x·W + b over the last axis of its input, at every position
 * of the other axes.
 */
export interface DenseShape {
  /** Size of the input's last axis (C_in). */
  inFeatures: number;
  /** Output features (C_out). */
  units: number;
  useBias: boolean;
  /**
   * Positions per example the layer is applied at: the product of the input's axes between the batch and the
   * features (1 for the usual `[batch, features]` input).
   */
  positions: number;
}

/** A layer of a trained model that surgery offers to a strategy. */
export interface TargetLayer {
  /** The layer's name in the model, e.g. `stage2.block1.conv1`. */
  name: string;
  /** tfjs class name, e.g. `Conv2D`. */
  className: string;
  /** The layer itself (read-only for strategies: never mutate or dispose it). */
  layer: Layer;
  /** Convolution geometry; null when the layer is not a plain 2-D convolution. */
  conv: ConvShape | null;
  /** Trained kernel `[kh, kw, inChannels, outChannels]` (tfjs layout); null for a non-convolution. */
  kernel: Tensor4D | null;
  /** Fully connected geometry; null when the layer is not a `Dense` with known input size. */
  dense: DenseShape | null;
  /** Trained kernel `[inFeatures, units]` of a `Dense` (tfjs layout); null for anything else. */
  denseKernel: Tensor2D | null;
  /** Trained bias `[outChannels]` (or `[units]` of a Dense), or null. */
  bias: Tensor1D | null;
  /** Fused activation of the layer (`linear` when none). */
  activation: string;
}

/** Whether a strategy can rewrite a layer, and why not. */
export type Support = { ok: true } | { ok: false; reason: string };

/** How the replacement's weights start. */
export type InitMode =
  /** Fitted to the trained layer's weights (e.g. least squares, truncated SVD). */
  | 'trained'
  /** Fresh initialisation, for training the decomposed network from scratch. */
  | 'scratch';

/** What surgery hands to `decompose` besides the target and options. */
export interface DecomposeContext {
  init: InitMode;
  /** Seed for any randomness in the initialisation; the same seed gives the same layers. */
  seed: number;
}

/**
 * The rewrite of one layer: layers applied one after another in place of the original, so that
 * `layers[n-1](...layers[0](x))` has the original layer's input and output shapes and channel order.
 */
export interface Decomposition {
  layers: Layer[];
  /**
   * Initial weights per layer, in the order of that layer's `getWeights()` once built; surgery sets them.
   * Omitted (or an empty entry) keeps the layer's own initialisers. Surgery disposes these tensors.
   */
  weights?: Tensor[][];
  /** Diagnostics to report, e.g. `{ relativeError: 0.031 }`. */
  info?: Record<string, number | string>;
  /**
   * Cost of this replacement when it depends on the trained weights (e.g. a rank chosen by retained energy),
   * so `cost(shape, options)` cannot know it; surgery reports this instead of calling `cost`.
   */
  cost?: LayerCost;
}

/** Parameters and multiply-adds of one layer (per image for MACs). */
export interface LayerCost {
  params: number;
  /** Multiply-adds of the forward pass for one image. */
  forwardMacs: number;
  /** Multiply-adds of the backward pass (input gradient + weight gradients) for one image. */
  backwardMacs: number;
}

/** A tensor shape as tfjs-layers gives it, batch dimension (null) first. */
export type Shape = readonly (number | null)[];

/** Where a layer sits in a model: the shapes of its inputs and outputs (batch dimension null). */
export interface LayerCostContext {
  inputShapes: readonly Shape[];
  outputShapes: readonly Shape[];
}

/** Computes the cost of one layer (params, per-image MACs) from where it sits in the model. */
export type LayerCostFunction = (layer: Layer, context: LayerCostContext) => LayerCost;

/**
 * A decomposition strategy: validated options, which layers it applies to, how it rewrites a layer, and
 * what the rewrite costs. Built-ins (basis, SVD) and third-party plugins implement the same interface.
 */
export interface DecompositionStrategy<Options = unknown> {
  /** Unique name used on the command line and in reports, e.g. `basis`. */
  readonly name: string;
  /** Semantic version of the strategy (of its package). */
  readonly version: string;
  /** One sentence for `--help` and reports. */
  readonly description: string;
  /** Validates and fills defaults of the options; surgery parses user input with it before any call. */
  readonly optionsSchema: z.ZodType<Options>;
  /** Whether `target` can be rewritten with `options`, with the reason when not. */
  supports(target: TargetLayer, options: Options): Support;
  /** The replacement of `target`; only called when `supports` said ok. */
  decompose(target: TargetLayer, options: Options, context: DecomposeContext): Decomposition;
  /**
   * Cost of the replacement of a convolution of this shape (the dense cost comes from core's cost model). A
   * `Dense` target is costed as the 1×1 convolution it equals (`denseAsConv`: C_in → units over `positions`×1
   * pixels), so a strategy that supports Dense layers needs no other cost function.
   */
  cost(shape: ConvShape, options: Options): LayerCost;
  /**
   * Optional cost functions of the custom layer classes the strategy creates, by class name, which
   * `costTable(model, { strategies })` uses (an alternative to implementing `CostAwareLayer` on the class).
   */
  readonly layerCosts?: Readonly<Record<string, LayerCostFunction>>;
  /**
   * Optional lowerings of the custom layer classes the strategy creates to stock tfjs-layers layers, by class
   * name, which `exportStock(model, { strategies })` uses (an alternative to `lowerToStock()` on the class).
   */
  readonly lowerings?: Readonly<Record<string, LayerLowering>>;
}
