import { expect, it } from 'vitest';
import { addCosts, convCost, withConv } from './cost.js';
import { sameConvShape } from './testing.js';

const conv3x3 = sameConvShape(16, 32, 3, 2, 32);

it('counts params and per-image multiply-adds of a convolution', () => {
  expect(convCost(conv3x3)).toEqual({ params: 4608, forwardMacs: 4608 * 256, backwardMacs: 2 * 4608 * 256 });
  expect(convCost({ ...conv3x3, useBias: true }).params).toBe(4608 + 32);
});

it('adds the costs of a decomposition’s pieces', () => {
  const pointwise = convCost(withConv(conv3x3, { kernelSize: [1, 1], inChannels: 8, inputSize: [16, 16] }));
  expect(addCosts(convCost(withConv(conv3x3, { outChannels: 8 })), pointwise)).toEqual({
    params: 1152 + 256,
    forwardMacs: (1152 + 256) * 256,
    backwardMacs: 2 * (1152 + 256) * 256,
  });
});
