import { add, mul, relu, serialization, type Tensor, tidy } from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import type { CostAwareLayer } from '../cost-table.js';
import type { AffineFold, AffineFoldableLayer, ChannelAffine } from '../inference.js';
import type { LayerCost, LayerCostContext } from '../strategy.js';

type Shape = (number | null)[];

/** Multiplies each channel by a learned scale; shared by the two test classes below. */
abstract class ChannelScale extends layers.Layer {
  protected scale: LayerVariable | null = null;

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    this.scale = this.addWeight('scale', [shape[shape.length - 1]!], 'float32', initializers.ones());
    this.built = true;
  }

  override call(inputs: Tensor | Tensor[]): Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    return mul(x, this.scale!.read());
  }
}

/** A custom layer that reports its own cost (`CostAwareLayer`). */
export class SelfCostedScale extends ChannelScale implements CostAwareLayer {
  static readonly className = 'TestSelfCostedScale';

  layerCost(context: LayerCostContext): LayerCost {
    const elements = context.outputShapes[0]!.slice(1).reduce<number>((n, d) => n * (d ?? 1), 1);
    return { params: this.countParams(), forwardMacs: elements, backwardMacs: 3 * elements };
  }
}
serialization.registerClass(SelfCostedScale);

/** A custom layer that knows nothing of costs. */
export class PlainScale extends ChannelScale {
  static readonly className = 'TestPlainScale';
}
serialization.registerClass(PlainScale);

/**
 * A per-channel scale and bias with an optional relu, that absorbs an affine after it (`AffineFoldableLayer`) and
 * refuses any activation but relu.
 */
export class FoldableScale extends layers.Layer implements AffineFoldableLayer {
  static readonly className = 'TestFoldableScale';
  readonly activation: 'linear' | 'relu';
  private scale: LayerVariable | null = null;
  private bias: LayerVariable | null = null;

  constructor(args: { name?: string; activation?: 'linear' | 'relu' }) {
    super(args);
    this.activation = args.activation ?? 'linear';
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
    const channels = [shape[shape.length - 1]!];
    this.scale = this.addWeight(
      'scale',
      channels,
      'float32',
      initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 1 }),
    );
    this.bias = this.addWeight(
      'bias',
      channels,
      'float32',
      initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 2 }),
    );
    this.built = true;
  }

  override call(inputs: Tensor | Tensor[]): Tensor {
    return tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0]! : inputs;
      const y = add(mul(x, this.scale!.read()), this.bias!.read());
      return this.activation === 'relu' ? relu(y) : y;
    });
  }

  foldAffine(affine: ChannelAffine): AffineFold {
    if (this.activation !== 'linear') return { reason: 'it applies relu itself' };
    if (affine.activation !== 'linear' && affine.activation !== 'relu') {
      return { reason: `it applies no ${affine.activation}` };
    }
    const weights = tidy(() => [
      mul(this.scale!.read(), affine.scale),
      add(mul(this.bias!.read(), affine.scale), affine.shift),
    ]);
    return { layer: new FoldableScale({ name: this.name, activation: affine.activation }), weights };
  }

  override getConfig(): serialization.ConfigDict {
    return { ...super.getConfig(), activation: this.activation };
  }
}
serialization.registerClass(FoldableScale);
