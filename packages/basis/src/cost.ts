import { addCosts, type ConvShape, convCost, type LayerCost, withConv } from '@decompose/core';
import { type BasisOptions, basisSize } from './options.js';

/**
 * Whether computing conv(x, B) and then the 1×1 step (factored) takes fewer multiply-adds than forming
 * W = A·B (m·k²·C_in·C_out, once per call) and running one dense convolution (folded), for `positions`
 * output pixels per call (batch × H_out × W_out; omitted: many, so the fold is free). The 1×1 step multiplies
 * by all of [I | A'ᵀ], m·C_out per pixel. Factored loses where it saves little: stems with 3 input channels,
 * 1×1 convolutions at m ≥ C_in·C_out/(C_in + C_out).
 */
export function factoredPays(
  kernelArea: number,
  inChannels: number,
  outChannels: number,
  m: number,
  positions = Number.POSITIVE_INFINITY,
): boolean {
  const depth = kernelArea * inChannels;
  const extraPerPosition = m * (depth + outChannels) - outChannels * depth;
  return extraPerPosition <= 0 || extraPerPosition * positions <= m * depth * outChannels;
}

/**
 * Cost of the basis replacement of a convolution as {@link BasisConv2D} runs it. Factored: the basis conv (m filters, no bias), the combinations
 * ((C_out − m) · m per output pixel for `shrunk`, C_out · m for `full`) and the bias. Backward is 2× forward:
 * with z = conv(x, B) and y = A z, the input gradient (conv-transpose with B) and B's gradient each cost
 * m·C_in·k²·HW, and dz = Aᵀ dy and A's gradient each cost as many multiply-adds as the combination.
 * Where the factored path does not pay ({@link factoredPays}) for calls of `batch` images (default: large),
 * the dense convolution's MACs.
 */
export function basisCost(
  shape: ConvShape,
  options: Pick<BasisOptions, 'ratio' | 'm' | 'form'>,
  batch = Number.POSITIVE_INFINITY,
): LayerCost {
  const m = basisSize(shape.outChannels, options);
  const [kh, kw] = shape.kernelSize;
  const combinations = options.form === 'full' ? shape.outChannels : shape.outChannels - m;
  const basis = convCost(withConv(shape, { outChannels: m, useBias: false }));
  const mixing = convCost(
    withConv(shape, {
      kernelSize: [1, 1],
      strides: [1, 1],
      dilation: [1, 1],
      inChannels: m,
      outChannels: combinations,
      useBias: false,
      inputSize: shape.outputSize,
    }),
  );
  const bias = { params: shape.useBias ? shape.outChannels : 0, forwardMacs: 0, backwardMacs: 0 };
  const factored = addCosts(basis, mixing, bias);
  const positions = batch * shape.outputSize[0] * shape.outputSize[1];
  if (factoredPays(kh * kw, shape.inChannels, shape.outChannels, m, positions)) return factored;
  // Folded: one dense convolution (the fold, once per call, is spread over the batch).
  const dense = convCost(shape);
  return { ...dense, params: factored.params };
}
