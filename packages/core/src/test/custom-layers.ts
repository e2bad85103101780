import { mul, serialization, type Tensor } from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import type { CostAwareLayer } from '../cost-table.js';
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
