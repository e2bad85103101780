import type { ConvShape, LayerCost } from './strategy.js';

/**
 * Cost of a plain convolution of this shape: params, and multiply-adds per image. The backward pass is the
 * input gradient plus the weight gradient, each as many multiply-adds as the forward pass.
 */
export function convCost(shape: ConvShape): LayerCost {
  const [kh, kw] = shape.kernelSize;
  const [ho, wo] = shape.outputSize;
  const weights = kh * kw * shape.inChannels * shape.outChannels;
  const forwardMacs = weights * ho * wo;
  return {
    params: weights + (shape.useBias ? shape.outChannels : 0),
    forwardMacs,
    backwardMacs: 2 * forwardMacs,
  };
}

/** The same convolution with other channel counts or kernel size (for costing the pieces of a decomposition). */
export function withConv(shape: ConvShape, change: Partial<ConvShape>): ConvShape {
  return { ...shape, ...change };
}

/** Sum of several costs (a decomposition's layers). */
export function addCosts(...costs: LayerCost[]): LayerCost {
  return costs.reduce(
    (sum, c) => ({
      params: sum.params + c.params,
      forwardMacs: sum.forwardMacs + c.forwardMacs,
      backwardMacs: sum.backwardMacs + c.backwardMacs,
    }),
    { params: 0, forwardMacs: 0, backwardMacs: 0 },
  );
}
