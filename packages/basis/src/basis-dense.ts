import {
  type AffineFold,
  type AffineFoldableLayer,
  type ChannelAffine,
  type CostAwareLayer,
  denseAsConv,
  type LayerCost,
  type LayerCostContext,
  type StockLowerableLayer,
  type StockLowering,
} from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import {
  ACTIVATIONS,
  assembleShrunkMixing,
  BASIS_ACTIVATIONS,
  type BasisExecution,
  type BasisForm,
  CHANNEL_MIX,
  type ClampActivation,
  checkBasisArgs,
  foldBasisAffine,
  type MixingConstants,
  mixingConstants,
} from './basis-conv2d.js';
import { basisCost, factoredPays } from './cost.js';
import { BasisConfigError } from './errors.js';
import { lowerBasisDense } from './export.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof layers.Layer>[0]>;
type Kwargs = Parameters<layers.Layer['call']>[1];
type Shape = (number | null)[];

/** Activations {@link BasisDense} applies: those of `BasisConv2D`, and `tanh` and `softmax` (over the units). */
export const BASIS_DENSE_ACTIVATIONS = [...BASIS_ACTIVATIONS, 'tanh', 'softmax'] as const;
/** An activation {@link BasisDense} can apply. */
export type BasisDenseActivation = (typeof BASIS_DENSE_ACTIVATIONS)[number];

const DENSE_ONLY_ACTIVATIONS: Record<'tanh' | 'softmax', (x: tf.Tensor) => tf.Tensor> = {
  tanh: tf.tanh,
  softmax: (x) => tf.softmax(x),
};

/** Constructor arguments of {@link BasisDense} (also its serialized config). */
export interface BasisDenseArgs extends LayerArgs {
  /** Output features of the Dense layer this one stands for. */
  units: number;
  /** Number m of trained basis neurons, 1 ≤ m ≤ units. */
  basisSize: number;
  useBias?: boolean;
  activation?: BasisDenseActivation;
  /** `shrunk` (default): A = [I_m; A']; `full`: A is a trained units × m matrix. As for `BasisConv2D`. */
  form?: BasisForm;
  /** Shrunk form only: `outputOrder[j]` is the internal output (basis first) that becomes unit j. */
  outputOrder?: readonly number[] | null;
  /** Seed of the initialisers (Glorot uniform for the basis, LeCun normal for the coefficients). */
  seed?: number | null;
  /** `factored` (x·B, then the combination), `folded` (x·(B·[I | A'ᵀ])) or `auto` (default, by multiply-adds). */
  execution?: BasisExecution;
}

/**
 * Basis fully connected layer, the `Dense` counterpart of `BasisConv2D` (arXiv 2408.06024 applied to a
 * fully connected layer): m trained basis neurons B (`[C_in, m]`, a Dense kernel) and coefficients, so that
 * y = act([I_m; A'] · (B·x) + bias) with the units in the original order. A custom layer rather than two stock
 * Dense layers: a stock second Dense would hold the whole m × units matrix, identity block included, train it
 * away from [I_m; A'] and cost m·units instead of (units − m)·m.
 *
 * Weights, in `getWeights()` order: `basis_kernel` `[C_in, m]`, `coefficients` (`[m, units − m]` = A'ᵀ for
 * `shrunk`, absent when m = units; `[m, units]` = Aᵀ for `full`), then `bias` `[units]` when `useBias`. Like
 * the stock Dense, it applies to the last axis of an input of any rank.
 */
export class BasisDense
  extends layers.Layer
  implements CostAwareLayer, StockLowerableLayer, AffineFoldableLayer
{
  /** @nocollapse */
  static className = 'BasisDense';

  readonly units: number;
  readonly basisSize: number;
  readonly useBias: boolean;
  readonly activation: BasisDenseActivation;
  readonly form: BasisForm;
  readonly outputOrder: readonly number[] | null;
  readonly seed: number | null;
  readonly execution: BasisExecution;

  private basisKernel: LayerVariable | null = null;
  private coefficients: LayerVariable | null = null;
  private bias: LayerVariable | null = null;
  private constants: MixingConstants | null = null;

  constructor(args: BasisDenseArgs) {
    super(args);
    const checked = checkBasisArgs('units', args.units, args, BASIS_DENSE_ACTIVATIONS);
    this.units = args.units;
    this.basisSize = checked.basisSize;
    this.useBias = checked.useBias;
    this.activation = checked.activation;
    this.form = checked.form;
    this.outputOrder = checked.outputOrder;
    this.seed = checked.seed;
    this.execution = checked.execution;
  }

  /** Whether outputs need a combination step (false only for shrunk m = units in identity order). */
  get mixes(): boolean {
    if (this.form === 'full' || this.basisSize < this.units) return true;
    return this.outputOrder?.some((t, j) => t !== j) ?? false;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const inFeatures = shape[shape.length - 1];
    if (shape.length < 2 || inFeatures === null || inFeatures === undefined) {
      throw new BasisConfigError(
        `BasisDense expects an input with a known last axis, got shape ${JSON.stringify(shape)}.`,
      );
    }
    const seed = this.seed ?? undefined;
    this.basisKernel = this.addWeight(
      'basis_kernel',
      [inFeatures, this.basisSize],
      'float32',
      initializers.glorotUniform({ seed }),
    );
    const combinations = this.form === 'full' ? this.units : this.units - this.basisSize;
    if (combinations > 0) {
      this.coefficients = this.addWeight(
        'coefficients',
        [this.basisSize, combinations],
        'float32',
        initializers.leCunNormal({ seed: seed === undefined ? undefined : seed + 1 }),
      );
    }
    if (this.useBias) this.bias = this.addWeight('bias', [this.units], 'float32', initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    return [...shape.slice(0, -1), this.units];
  }

  /** The m × units weight of the combination step (`[I_m | A'ᵀ]` in output order, or Aᵀ); null when none. */
  mixingMatrix(): tf.Tensor2D | null {
    if (!this.mixes) return null;
    if (this.form === 'full') return this.coefficients!.read() as tf.Tensor2D;
    const coefficientsT =
      this.coefficients === null
        ? tf.zeros<tf.Rank.R2>([this.basisSize, 0])
        : (this.coefficients.read() as tf.Tensor2D);
    this.constants ??= mixingConstants(this.basisSize, this.units, this.outputOrder);
    return assembleShrunkMixing(coefficientsT, this.constants);
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
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      this.invokeCallHook(x, kwargs);
      const inFeatures = x.shape[x.shape.length - 1]!;
      const rows = tf.reshape(x, [-1, inFeatures]) as tf.Tensor2D;
      const basis = this.basisKernel!.read() as tf.Tensor2D;
      const bias = this.bias === null ? undefined : (this.bias.read() as tf.Tensor1D);
      const mixing = this.mixingMatrix();
      const a = this.activation;
      const fused: ClampActivation = a === 'relu' || a === 'relu6' ? a : 'linear';
      const mix = CHANNEL_MIX[fused];
      let y: tf.Tensor2D;
      if (mixing === null) y = mix(rows, basis, bias);
      else if (this.runsFolded(inFeatures, rows.shape[0]))
        y = mix(rows, CHANNEL_MIX.linear(basis, mixing), bias);
      else y = mix(tf.matMul(rows, basis), mixing, bias);
      const shaped = tf.reshape(y, [...x.shape.slice(0, -1), this.units]);
      if (fused === this.activation) return shaped;
      const activation = this.activation;
      return activation === 'tanh' || activation === 'softmax'
        ? DENSE_ONLY_ACTIVATIONS[activation](shaped)
        : ACTIVATIONS[activation](shaped);
    });
  }

  /** Whether this call forms B·[I | A'ᵀ] and runs one matMul (see `BasisExecution`). */
  private runsFolded(inFeatures: number, positions: number): boolean {
    if (this.execution !== 'auto') return this.execution === 'folded';
    return !factoredPays(1, inFeatures, this.units, this.basisSize, positions);
  }

  /**
   * The stock `Dense` layers this layer equals, for core's `exportStock`: m basis neurons and a combination with
   * `[I_m | A'ᵀ]`, bias and activation, or one Dense where that is cheaper (see `lowerBasisDense`).
   */
  lowerToStock(): StockLowering {
    return lowerBasisDense(this);
  }

  /**
   * A copy absorbing a per-unit affine and an activation after it (a BatchNormalization and activation after this
   * layer, folded for eval by core's `inferenceModel`); as `BasisConv2D.foldAffine`.
   */
  foldAffine(affine: ChannelAffine): AffineFold {
    return foldBasisAffine(this, affine, BASIS_DENSE_ACTIVATIONS, (changes) => {
      const config = this.getConfig() as unknown as BasisDenseArgs;
      return new BasisDense({
        ...config,
        ...changes,
        activation: changes.activation as BasisDenseActivation,
        useBias: true,
      });
    });
  }

  /**
   * Parameters and per-image multiply-adds where the layer sits in a model (core's `costTable` calls it): those
   * of a basis 1×1 convolution over the Dense's positions, m·C_in + (units − m)·m MACs per position (shrunk).
   */
  layerCost(context: LayerCostContext): LayerCost {
    const input = context.inputShapes[0] ?? [];
    const positions = input.slice(1, -1).reduce<number>((n, d) => n * (d ?? 1), 1);
    const shape = denseAsConv({
      inFeatures: input[input.length - 1] ?? 0,
      units: this.units,
      useBias: this.useBias,
      positions,
    });
    return basisCost(shape, { m: this.basisSize, form: this.form });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      basisSize: this.basisSize,
      useBias: this.useBias,
      activation: this.activation,
      form: this.form,
      outputOrder: this.outputOrder === null ? null : [...this.outputOrder],
      seed: this.seed,
      execution: this.execution,
    };
  }
}

tf.serialization.registerClass(BasisDense);
