import type {
  AffineFold,
  AffineFoldableLayer,
  ChannelAffine,
  CostAwareLayer,
  Layer,
  LayerCost,
  LayerCostContext,
  StockLowerableLayer,
  StockLowering,
} from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import { basisCost, factoredPays } from './cost.js';
import { BasisConfigError } from './errors.js';
import { lowerBasisConv2D } from './export.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof layers.Layer>[0]>;
type Kwargs = Parameters<layers.Layer['call']>[1];
type Shape = (number | null)[];

/**
 * Activations the layer can apply: fused into the convolution when it runs one (folded), else relu and relu6
 * into the 1×1 step's matMul and the others after it.
 */
export const BASIS_ACTIVATIONS = ['linear', 'relu', 'relu6', 'elu', 'sigmoid'] as const;
/** An activation {@link BasisConv2D} can apply. */
export type BasisActivation = (typeof BASIS_ACTIVATIONS)[number];

/**
 * How the layer computes its outputs: `factored` convolves with the m basis filters, then applies the 1×1
 * step; `folded` forms W = A·B each call and runs one dense convolution (cheaper where the factored path saves
 * nothing); `auto` (default) picks per call, by multiply-adds ({@link factoredPays}). Same weights and results.
 */
export type BasisExecution = 'auto' | 'factored' | 'folded';

/** How the C_out outputs are formed from the m basis outputs. */
export type BasisForm = 'shrunk' | 'full';

/** Constructor arguments of {@link BasisConv2D} (also its serialized config). */
export interface BasisConv2DArgs extends LayerArgs {
  /** Output channels C_out of the convolution this layer stands for. */
  filters: number;
  /** Number m of trained basis filters, 1 ≤ m ≤ C_out. */
  basisSize: number;
  kernelSize: number | readonly [number, number];
  strides?: number | readonly [number, number];
  padding?: 'same' | 'valid';
  dilationRate?: number | readonly [number, number];
  useBias?: boolean;
  activation?: BasisActivation;
  /**
   * `shrunk` (default): outputs are the m basis outputs and C_out − m trained combinations of them,
   * A = [I_m; A']. `full`: all C_out outputs are trained combinations, A is C_out × m.
   */
  form?: BasisForm;
  /**
   * Shrunk form only: `outputOrder[j]` is the internal output (0..m−1 basis, m.. combinations) that
   * becomes output channel j, so the channel order matches the layer this one replaces. Omitted: identity.
   */
  outputOrder?: readonly number[] | null;
  /** Seed of the initialisers (He normal for the basis, LeCun normal for the coefficients). */
  seed?: number | null;
  /** Computation path; default `auto`. */
  execution?: BasisExecution;
}

function pair(value: number | readonly [number, number], what: string): [number, number] {
  const [a, b] = typeof value === 'number' ? [value, value] : value;
  if (a === undefined || b === undefined || !Number.isInteger(a) || !Number.isInteger(b) || a < 1 || b < 1) {
    throw new BasisConfigError(
      `${what} must be a positive integer or a pair of them, got ${JSON.stringify(value)}.`,
    );
  }
  return [a, b];
}

function outputLength(
  size: number | null,
  kernel: number,
  stride: number,
  dilation: number,
  padding: string,
) {
  if (size === null) return null;
  const span = padding === 'same' ? size : size - (kernel - 1) * dilation;
  return Math.ceil(span / stride);
}

/** Constant tensors of the shrunk combination step, made once per layer (kept across calls). */
export interface MixingConstants {
  identity: tf.Tensor2D;
  /** `order[j]`: internal output (basis first, then combinations) that is output channel j; null: identity. */
  order: tf.Tensor1D | null;
  /** Output channel of each combination, in internal order: the inverse of `order` on A'ᵀ's columns. */
  combinationColumns: tf.Tensor1D | null;
}

/** The kept constants of the shrunk combination step of m basis outputs into n outputs in `order`. */
export function mixingConstants(m: number, n: number, order: readonly number[] | null): MixingConstants {
  const combinationColumns = new Array<number>(n - m);
  order?.forEach((t, j) => {
    if (t >= m) combinationColumns[t - m] = j;
  });
  return {
    identity: tf.keep(tf.eye(m)),
    order: order === null ? null : tf.keep(tf.tensor1d([...order], 'int32')),
    combinationColumns: order === null ? null : tf.keep(tf.tensor1d(combinationColumns, 'int32')),
  };
}

/**
 * `[I_m | A'ᵀ]`, with its columns in output order when the layer has one. The gradient is A'ᵀ's columns of dy
 * (a slice, or the inverse permutation): tfjs's own concat gradient splits dy into pieces it then drops, and
 * its gather gradient needs UnsortedSegmentSum, which the wasm backend lacks.
 */
export function assembleShrunkMixing(coefficientsT: tf.Tensor2D, constants: MixingConstants): tf.Tensor2D {
  const { identity, order, combinationColumns } = constants;
  const assemble = tf.customGrad((...inputs) => {
    const mixing = tf.concat([identity, inputs[0] as tf.Tensor2D], 1);
    return {
      value: order === null ? mixing : tf.gather(mixing, order, 1),
      gradFunc: (dy: tf.Tensor) =>
        combinationColumns === null
          ? tf.slice(dy, [0, identity.shape[0]], [-1, -1])
          : tf.gather(dy, combinationColumns, 1),
    };
  });
  return assemble(coefficientsT) as tf.Tensor2D;
}

/** Activations the wasm backend's matMul applies as it writes its output (XNNPACK clamps), so for free. */
export type ClampActivation = 'linear' | 'relu' | 'relu6';

function isClamp(activation: BasisActivation): activation is ClampActivation {
  return activation === 'linear' || activation === 'relu' || activation === 'relu6';
}

/** dy through a clamp activation, from its output y: zero where the clamp cut the value off. */
function throughClamp(dy: tf.Tensor, y: tf.Tensor, activation: ClampActivation): tf.Tensor {
  if (activation === 'linear') return dy;
  if (activation === 'relu') return tf.mul(dy, tf.step(y));
  return tf.mul(dy, tf.cast(tf.logicalAnd(tf.greater(y, 0), tf.less(y, 6)), 'float32'));
}

type ChannelMix = (z: tf.Tensor2D, mixing: tf.Tensor2D, bias?: tf.Tensor1D) => tf.Tensor2D;

/**
 * a·b (+ bias, then the activation) as one kernel. Not `tf.fused.matMul`: while a gradient is being recorded
 * it splits into matMul, add and activation (its own gradient needs the pre-activation); ours needs only y.
 */
function fusedMatMul(
  a: tf.Tensor2D,
  b: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  activation: ClampActivation,
): tf.Tensor2D {
  if (bias === undefined && activation === 'linear') return tf.matMul(a, b);
  // The kernel takes rank-3 operands, as tf.fused.matMul hands them over.
  const inputs: tf.NamedTensorMap = { a: tf.expandDims(a, 0), b: tf.expandDims(b, 0) };
  if (bias !== undefined) inputs.bias = bias;
  const attrs = { transposeA: false, transposeB: false, activation };
  return tf.squeeze(tf.engine().runKernel(tf._FusedMatMul, inputs, attrs) as tf.Tensor3D, [0]);
}

/*
 * y = act(z·M + bias) over the channel dimension, as ONE fused matMul that writes the layer's output (no
 * concat of basis and combination outputs, whose gradient would copy slices of dy). The gradient transposes
 * the small M explicitly (the stock wasm matMul with transposeB runs a naive loop, 4–10× slower than XNNPACK)
 * and asks for zᵀ·dy as a transposed product, which @decompose/engine computes in one SIMD pass over z and dy
 * (materialising zᵀ would copy all of z; only stock wasm, which does not train, pays its naive loop).
 */
function channelMixFor(activation: ClampActivation): ChannelMix {
  const mix = tf.customGrad((...args) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [z, mixing, bias] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D | undefined];
    const y = fusedMatMul(z, mixing, bias, activation);
    save([z, mixing, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [zs, ms, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const dPre = throughClamp(dy, ys, activation) as tf.Tensor2D;
        const grads = [tf.matMul(dPre, tf.transpose(ms)), tf.matMul(zs, dPre, true, false)];
        return bias === undefined ? grads : [...grads, tf.sum(dPre, 0)];
      },
    };
  });
  return (z, mixing, bias) => (bias === undefined ? mix(z, mixing) : mix(z, mixing, bias)) as tf.Tensor2D;
}

export const CHANNEL_MIX: Record<ClampActivation, ChannelMix> = {
  linear: channelMixFor('linear'),
  relu: channelMixFor('relu'),
  relu6: channelMixFor('relu6'),
};

export const ACTIVATIONS: Record<BasisActivation, (x: tf.Tensor) => tf.Tensor> = {
  linear: (x) => x,
  relu: tf.relu,
  relu6: tf.relu6,
  elu: tf.elu,
  sigmoid: tf.sigmoid,
};

/** The arguments a basis layer of `outputs` outputs shares with the other basis layers, checked and defaulted. */
export interface CheckedBasisArgs<Activation extends string> {
  basisSize: number;
  useBias: boolean;
  activation: Activation;
  form: BasisForm;
  outputOrder: readonly number[] | null;
  seed: number | null;
  execution: BasisExecution;
}

/**
 * Checks the arguments every basis layer (`BasisConv2D`, `BasisDense`) takes: `outputs` (named `what`, e.g.
 * `filters` or `units`) a positive integer, `basisSize` in [1, outputs], an activation of `activations`, the form,
 * `outputOrder` a permutation of the outputs (shrunk form only) and the execution; defaults filled in.
 *
 * @throws BasisConfigError quoting the bad value.
 */
export function checkBasisArgs<Activation extends string>(
  what: string,
  outputs: number,
  args: {
    basisSize: number;
    useBias?: boolean;
    activation?: Activation;
    form?: BasisForm;
    outputOrder?: readonly number[] | null;
    seed?: number | null;
    execution?: BasisExecution;
  },
  activations: readonly Activation[],
): CheckedBasisArgs<Activation> {
  if (!Number.isInteger(outputs) || outputs < 1) {
    throw new BasisConfigError(`${what} must be a positive integer, got ${outputs}.`);
  }
  const { basisSize } = args;
  if (!Number.isInteger(basisSize) || basisSize < 1 || basisSize > outputs) {
    throw new BasisConfigError(
      `basisSize must be an integer in [1, ${what} = ${outputs}], got ${basisSize}; lower the ratio or m.`,
    );
  }
  const activation = args.activation ?? ('linear' as Activation);
  if (!activations.includes(activation)) {
    throw new BasisConfigError(
      `activation '${activation}' is not supported; use one of ${activations.join(', ')} or a separate activation layer.`,
    );
  }
  const form = args.form ?? 'shrunk';
  if (form !== 'shrunk' && form !== 'full') {
    throw new BasisConfigError(`form must be 'shrunk' or 'full', got '${String(form)}'.`);
  }
  const outputOrder = args.outputOrder ?? null;
  if (outputOrder !== null) {
    if (form === 'full') {
      throw new BasisConfigError('outputOrder only applies to the shrunk form; fold it into A for full.');
    }
    const seen = new Set(outputOrder);
    const isPermutation =
      outputOrder.length === outputs &&
      seen.size === outputs &&
      outputOrder.every((t) => Number.isInteger(t) && t >= 0 && t < outputs);
    if (!isPermutation) {
      throw new BasisConfigError(`outputOrder must be a permutation of 0..${outputs - 1}.`);
    }
  }
  const execution = args.execution ?? 'auto';
  if (!['auto', 'factored', 'folded'].includes(execution)) {
    throw new BasisConfigError(`execution must be 'auto', 'factored' or 'folded', got '${execution}'.`);
  }
  return {
    basisSize,
    useBias: args.useBias ?? true,
    activation,
    form,
    outputOrder,
    seed: args.seed ?? null,
    execution,
  };
}

/** What {@link foldBasisAffine} reads of a basis layer (`BasisConv2D`, `BasisDense`): its public fields and weights. */
export interface BasisLayerView {
  readonly built: boolean;
  readonly basisSize: number;
  readonly form: BasisForm;
  readonly outputOrder: readonly number[] | null;
  readonly activation: string;
  readonly useBias: boolean;
  /** `basis_kernel` (its last axis the m basis outputs), `coefficients` when there are any, `bias` when used. */
  getWeights(): tf.Tensor[];
  /** `[I_m | A'ᵀ]` in output order, or Aᵀ, for a shrunk layer refolded as full. */
  mixingMatrix(): tf.Tensor2D | null;
}

/** A basis output whose scale is this small beside the largest cannot divide A' (see {@link foldBasisAffine}). */
const SMALLEST_BASIS_SCALE = 1e-6;

/**
 * A basis layer's copy absorbing y' = act(s·y + t) per output channel (core's `AffineFoldableLayer`), built by
 * `make` from the new form, output order and activation. Shrunk, A = [I_m; A']: scaling basis output i by s_top[i]
 * scales B's filter i, and the combinations become A'' = diag(s_bot)·A'·diag(1/s_top), so the form and the
 * parameter count stay. Where some s_top is 0 (or below 1e-6 of the largest scale), 1/s_top does not exist: the
 * copy is the full form, Aᵀ = `[I_m | A'ᵀ]`·diag(s) with B unchanged (same work per call, since the shrunk
 * layer runs that matrix too; m² more parameters), and its `note` says so. Full: Aᵀ·diag(s). The bias becomes
 * b·s + t. A layer applying an activation of its own, or asked for one it cannot apply, refuses.
 */
export function foldBasisAffine(
  layer: BasisLayerView,
  affine: ChannelAffine,
  activations: readonly string[],
  make: (changes: { form: BasisForm; outputOrder: readonly number[] | null; activation: string }) => Layer,
): AffineFold {
  if (!layer.built) return { reason: 'it is not built' };
  if (layer.activation !== 'linear') return { reason: `it applies ${layer.activation} itself` };
  if (!activations.includes(affine.activation)) {
    return { reason: `it cannot apply ${affine.activation} (only ${activations.join(', ')})` };
  }
  const { basisSize: m, outputOrder } = layer;
  const own = layer.getWeights();
  const basis = own[0]!;
  const coefficients = (own.length === (layer.useBias ? 3 : 2) ? own[1] : null) as tf.Tensor2D | null;
  const bias = layer.useBias ? own[own.length - 1]! : null;
  const scale = Float32Array.from(affine.scale.dataSync());
  // Scale of internal output i (basis first, then combinations): that of the output channel it becomes.
  const internal = new Float32Array(scale.length);
  scale.forEach((v, j) => {
    internal[outputOrder?.[j] ?? j] = v;
  });
  const top = internal.subarray(0, m);
  const largest = scale.reduce((max, v) => Math.max(max, Math.abs(v)), 0);
  const divisible = top.every((v) => Math.abs(v) > SMALLEST_BASIS_SCALE * largest);
  const shrunk = layer.form === 'shrunk' && (coefficients === null || divisible);
  const folded = tf.tidy(() => {
    const newBias = tf.add(tf.mul(bias ?? tf.zerosLike(affine.shift), affine.scale), affine.shift);
    if (!shrunk) {
      const mixing = layer.form === 'full' ? coefficients! : layer.mixingMatrix()!;
      return [basis.clone(), tf.mul(mixing, affine.scale), newBias];
    }
    const topScale = tf.tensor1d(top);
    const newBasis = tf.mul(basis, topScale);
    if (coefficients === null) return [newBasis, newBias];
    const ratios = tf.div(
      tf.tensor2d(internal.subarray(m), [1, internal.length - m]),
      tf.reshape(topScale, [m, 1]),
    );
    return [newBasis, tf.mul(coefficients, ratios), newBias];
  });
  const copy = make({
    form: shrunk ? layer.form : 'full',
    outputOrder: shrunk ? outputOrder : null,
    activation: affine.activation,
  });
  const note =
    layer.form === 'shrunk' && !shrunk
      ? `folded as the full form (A stored whole, ${m}×${scale.length}): a basis output's scale is 0`
      : undefined;
  return note === undefined ? { layer: copy, weights: folded } : { layer: copy, weights: folded, note };
}

/**
 * Basis convolution (arXiv 2408.06024): m trained filters B (a normal conv kernel `[kh, kw, C_in, m]`)
 * and a trained coefficient matrix; the C_out outputs are y = A · conv(x, B).
 *
 * The forward pass is one convolution with B followed by ONE 1×1 step: a matMul over the channel dimension
 * with the m × C_out weight `[I_m | A'ᵀ]` (columns in `outputOrder`), bias and relu/relu6 fused, so the
 * output is written by one op. The identity block costs m² multiply-adds per pixel more than combining only
 * the C_out − m outputs and concatenating, but on wasm that concat (and the slices of dy its gradient takes)
 * is 4–8× slower than the whole matMul. See {@link BasisExecution} for the folded alternative.
 * Weights, in `getWeights()` order: `basis_kernel` `[kh, kw, C_in, m]`,
 * `coefficients` (`[m, C_out − m]` = A'ᵀ for `shrunk`, absent when m = C_out; `[m, C_out]` = Aᵀ for `full`),
 * then `bias` `[C_out]` when `useBias`.
 */
export class BasisConv2D
  extends layers.Layer
  implements CostAwareLayer, StockLowerableLayer, AffineFoldableLayer
{
  /** @nocollapse */
  static className = 'BasisConv2D';

  readonly filters: number;
  readonly basisSize: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'same' | 'valid';
  readonly dilationRate: [number, number];
  readonly useBias: boolean;
  readonly activation: BasisActivation;
  readonly form: BasisForm;
  readonly outputOrder: readonly number[] | null;
  readonly seed: number | null;
  readonly execution: BasisExecution;

  private basisKernel: LayerVariable | null = null;
  private coefficients: LayerVariable | null = null;
  private bias: LayerVariable | null = null;
  private constants: MixingConstants | null = null;

  constructor(args: BasisConv2DArgs) {
    super(args);
    const checked = checkBasisArgs('filters', args.filters, args, BASIS_ACTIVATIONS);
    this.filters = args.filters;
    this.basisSize = checked.basisSize;
    this.kernelSize = pair(args.kernelSize, 'kernelSize');
    this.strides = pair(args.strides ?? 1, 'strides');
    this.dilationRate = pair(args.dilationRate ?? 1, 'dilationRate');
    if (Math.max(...this.strides) > 1 && Math.max(...this.dilationRate) > 1) {
      throw new BasisConfigError('strides > 1 and dilationRate > 1 cannot be combined (as in tfjs Conv2D).');
    }
    this.padding = args.padding ?? 'valid';
    if (this.padding !== 'same' && this.padding !== 'valid') {
      throw new BasisConfigError(`padding must be 'same' or 'valid', got '${String(this.padding)}'.`);
    }
    this.useBias = checked.useBias;
    this.activation = checked.activation;
    this.form = checked.form;
    this.outputOrder = checked.outputOrder;
    this.seed = checked.seed;
    this.execution = checked.execution;
  }

  /** Whether outputs need a 1×1 combination step (false only for shrunk m = C_out in identity order). */
  get mixes(): boolean {
    if (this.form === 'full' || this.basisSize < this.filters) return true;
    return this.outputOrder?.some((t, j) => t !== j) ?? false;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const inChannels = shape[3];
    if (shape.length !== 4 || inChannels === null || inChannels === undefined) {
      throw new BasisConfigError(
        `BasisConv2D expects NHWC input with known channels, got shape ${JSON.stringify(shape)}.`,
      );
    }
    const seed = this.seed ?? undefined;
    const [kh, kw] = this.kernelSize;
    this.basisKernel = this.addWeight(
      'basis_kernel',
      [kh, kw, inChannels, this.basisSize],
      'float32',
      initializers.heNormal({ seed }),
    );
    const combinations = this.form === 'full' ? this.filters : this.filters - this.basisSize;
    if (combinations > 0) {
      // LeCun normal (variance 1/m): each combination of m roughly independent basis outputs then has the
      // same variance as a basis output, i.e. as a He-initialised dense conv output.
      this.coefficients = this.addWeight(
        'coefficients',
        [this.basisSize, combinations],
        'float32',
        initializers.leCunNormal({ seed: seed === undefined ? undefined : seed + 1 }),
      );
    }
    if (this.useBias) {
      this.bias = this.addWeight('bias', [this.filters], 'float32', initializers.zeros());
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const [kh, kw] = this.kernelSize;
    return [
      shape[0] ?? null,
      outputLength(shape[1] ?? null, kh, this.strides[0], this.dilationRate[0], this.padding),
      outputLength(shape[2] ?? null, kw, this.strides[1], this.dilationRate[1], this.padding),
      this.filters,
    ];
  }

  /**
   * The m × C_out weight of the 1×1 combination step, `[I_m | A'ᵀ]` with columns in output order (shrunk)
   * or Aᵀ (full); null when no combination is needed. Call inside `tf.tidy`.
   */
  mixingMatrix(): tf.Tensor2D | null {
    if (!this.mixes) return null;
    if (this.form === 'full') return this.coefficients!.read() as tf.Tensor2D;
    const coefficientsT =
      this.coefficients === null
        ? tf.zeros<tf.Rank.R2>([this.basisSize, 0])
        : (this.coefficients.read() as tf.Tensor2D);
    return assembleShrunkMixing(coefficientsT, this.mixingConstants());
  }

  private mixingConstants(): MixingConstants {
    this.constants ??= mixingConstants(this.basisSize, this.filters, this.outputOrder);
    return this.constants;
  }

  protected override disposeWeights(): number {
    if (this.constants !== null) {
      tf.dispose(Object.values(this.constants).filter((t): t is tf.Tensor => t !== null));
    }
    this.constants = null;
    return super.disposeWeights();
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      this.invokeCallHook(x, kwargs);
      const basis = this.basisKernel!.read() as tf.Tensor4D;
      const bias = this.bias === null ? undefined : (this.bias.read() as tf.Tensor1D);
      const mixing = this.mixingMatrix();
      if (mixing === null || this.runsFolded(x.shape)) {
        return tf.fused.conv2d({
          x,
          filter: mixing === null ? basis : this.foldedKernel(basis, mixing),
          strides: this.strides,
          pad: this.padding,
          dilations: this.dilationRate,
          bias,
          activation: this.activation,
        });
      }
      const basisOutputs = tf.conv2d(x, basis, this.strides, this.padding, 'NHWC', this.dilationRate);
      const [n, h, w] = basisOutputs.shape;
      const z = tf.reshape(basisOutputs, [n * h * w, this.basisSize]) as tf.Tensor2D;
      const fused = isClamp(this.activation) ? this.activation : 'linear';
      const y = tf.reshape(CHANNEL_MIX[fused](z, mixing, bias), [n, h, w, this.filters]);
      return fused === this.activation ? y : ACTIVATIONS[this.activation](y);
    });
  }

  /** Whether this call forms W = A·B and runs one convolution (see {@link BasisExecution}). */
  private runsFolded(inputShape: number[]): boolean {
    if (this.execution !== 'auto') return this.execution === 'folded';
    const [n, ho, wo] = this.computeOutputShape(inputShape);
    const [kh, kw] = this.kernelSize;
    const positions = (n ?? 1) * (ho ?? 1) * (wo ?? 1);
    return !factoredPays(kh * kw, inputShape[3] ?? 0, this.filters, this.basisSize, positions);
  }

  /** W = A·B as a conv kernel `[kh, kw, C_in, C_out]`: the basis filters times the 1×1 step's weight. */
  private foldedKernel(basis: tf.Tensor4D, mixing: tf.Tensor2D): tf.Tensor4D {
    const [kh, kw, inChannels] = basis.shape;
    const flat = tf.reshape(basis, [kh * kw * inChannels, this.basisSize]) as tf.Tensor2D;
    return tf.reshape(CHANNEL_MIX.linear(flat, mixing), [kh, kw, inChannels, this.filters]);
  }

  /**
   * The equivalent plain convolution, W = A·B: a `tf.layers.conv2d` config and its initial weights
   * (`[kernel]` or `[kernel, bias]`). The caller owns the returned tensors.
   */
  toDense(): { config: DenseConvConfig; weights: tf.Tensor[] } {
    if (!this.built) {
      throw new BasisConfigError('toDense() needs a built layer: apply it to an input or a model first.');
    }
    const weights = tf.tidy(() => {
      const basis = this.basisKernel!.read() as tf.Tensor4D;
      const mixing = this.mixingMatrix();
      const kernel = mixing === null ? basis.clone() : this.foldedKernel(basis, mixing);
      return this.bias === null ? [kernel] : [kernel, this.bias.read().clone()];
    });
    return {
      config: {
        name: `${this.name}_dense`,
        filters: this.filters,
        kernelSize: [...this.kernelSize],
        strides: [...this.strides],
        padding: this.padding,
        dilationRate: [...this.dilationRate],
        useBias: this.useBias,
        activation: this.activation,
      },
      weights,
    };
  }

  /**
   * The stock `Conv2D` layers this layer lowers to, with their weights (the caller owns them): a k×k conv to the m
   * basis outputs and a 1×1 conv with `[I_m | A'ᵀ]`, bias and activation, or one dense conv where that is cheaper
   * (see `lowerBasisConv2D`). Core's `exportStock` calls it.
   */
  lowerToStock(): StockLowering {
    return lowerBasisConv2D(this);
  }

  /**
   * A copy absorbing a per-output-channel affine and an activation after it, for core's `inferenceModel` (the
   * BatchNormalization and relu after this layer, folded for eval); see {@link foldBasisAffine}.
   */
  foldAffine(affine: ChannelAffine): AffineFold {
    return foldBasisAffine(this, affine, BASIS_ACTIVATIONS, (changes) => {
      const config = this.getConfig() as unknown as BasisConv2DArgs;
      return new BasisConv2D({
        ...config,
        ...changes,
        activation: changes.activation as BasisActivation,
        useBias: true,
      });
    });
  }

  /** Parameters and per-image multiply-adds where the layer sits in a model (core's `costTable` calls it). */
  layerCost(context: LayerCostContext): LayerCost {
    const input = context.inputShapes[0] ?? [];
    const output = context.outputShapes[0] ?? [];
    return basisCost(
      {
        kernelSize: this.kernelSize,
        inChannels: input[3] ?? 0,
        outChannels: this.filters,
        strides: this.strides,
        dilation: this.dilationRate,
        padding: this.padding,
        useBias: this.useBias,
        inputSize: [input[1] ?? 0, input[2] ?? 0],
        outputSize: [output[1] ?? 0, output[2] ?? 0],
      },
      { m: this.basisSize, form: this.form },
    );
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      filters: this.filters,
      basisSize: this.basisSize,
      kernelSize: [...this.kernelSize],
      strides: [...this.strides],
      padding: this.padding,
      dilationRate: [...this.dilationRate],
      useBias: this.useBias,
      activation: this.activation,
      form: this.form,
      outputOrder: this.outputOrder === null ? null : [...this.outputOrder],
      seed: this.seed,
      execution: this.execution,
    };
  }
}

/** A plain `tf.layers.conv2d` configuration (the dense equivalent of a {@link BasisConv2D}). */
export interface DenseConvConfig {
  name: string;
  filters: number;
  kernelSize: [number, number];
  strides: [number, number];
  padding: 'same' | 'valid';
  dilationRate: [number, number];
  useBias: boolean;
  activation: BasisActivation;
}

tf.serialization.registerClass(BasisConv2D);
