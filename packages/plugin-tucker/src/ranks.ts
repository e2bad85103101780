import { addCosts, type ConvShape, convCost, type LayerCost, withConv } from '@decompose/core';
import type { TuckerOptions } from './options.js';

/** [r_in, r_out]: channels after the first 1×1 convolution and after the core convolution. */
export type TuckerRanks = readonly [number, number];

/**
 * Geometry of the three convolutions that replace `shape`: a 1×1 convolution C_in → r_in at the input's
 * resolution, the k_h×k_w core r_in → r_out (original stride, padding, dilation), and a 1×1 r_out → C_out
 * carrying the original bias.
 */
export function tuckerConvShapes(
  shape: ConvShape,
  [rIn, rOut]: TuckerRanks,
): [ConvShape, ConvShape, ConvShape] {
  const pointwise = { kernelSize: [1, 1], strides: [1, 1], dilation: [1, 1] } as const;
  return [
    withConv(shape, { ...pointwise, outChannels: rIn, useBias: false, outputSize: shape.inputSize }),
    withConv(shape, { inChannels: rIn, outChannels: rOut, useBias: false }),
    withConv(shape, { ...pointwise, inChannels: rOut, inputSize: shape.outputSize }),
  ];
}

/** Exact cost of the Tucker-2 replacement of a convolution of this shape. */
export function tuckerCost(shape: ConvShape, ranks: TuckerRanks): LayerCost {
  return addCosts(...tuckerConvShapes(shape, ranks).map(convCost));
}

/**
 * Ranks for a parameter ratio: r_in = α·C_in and r_out = α·C_out (rounded down) with the largest α whose
 * parameters C_in·r_in + k_h·k_w·r_in·r_out + r_out·C_out (+ bias) fit in ratio × the dense parameters.
 * Null when not even ranks (1, 1) fit.
 */
export function ranksForRatio(shape: ConvShape, ratio: number): TuckerRanks | null {
  const { inChannels: cin, outChannels: cout } = shape;
  const [kh, kw] = shape.kernelSize;
  const bias = shape.useBias ? cout : 0;
  const budget = ratio * convCost(shape).params;
  // params(α) = a·α² + b·α + bias: solve params(α) = budget for the positive root.
  const a = kh * kw * cin * cout;
  const b = cin * cin + cout * cout;
  const alpha = (-b + Math.sqrt(b * b + 4 * a * (budget - bias))) / (2 * a);
  const ranks: TuckerRanks = [
    Math.min(cin, Math.max(1, Math.floor(alpha * cin))),
    Math.min(cout, Math.max(1, Math.floor(alpha * cout))),
  ];
  return tuckerCost(shape, ranks).params <= budget ? ranks : null;
}

/** The ranks the options ask for on a convolution of this shape, or why they cannot be served. */
export function planRanks(
  shape: ConvShape,
  options: TuckerOptions,
): { ranks: TuckerRanks } | { reason: string } {
  const { inChannels: cin, outChannels: cout } = shape;
  if (options.ranks !== undefined) {
    const [rIn, rOut] = options.ranks;
    if (rIn <= cin && rOut <= cout) return { ranks: [rIn, rOut] };
    return {
      reason: `ranks [${rIn}, ${rOut}] exceed the layer's channels [C_in, C_out] = [${cin}, ${cout}]; use r_in ≤ ${cin} and r_out ≤ ${cout}`,
    };
  }
  if (options.ratio === undefined) return { reason: 'give exactly one of ranks or ratio' };
  const ranks = ranksForRatio(shape, options.ratio);
  if (ranks !== null) return { ranks };
  return {
    reason: `ratio ${options.ratio} allows ${Math.floor(options.ratio * convCost(shape).params)} parameters, below the ${tuckerCost(shape, [1, 1]).params} of ranks [1, 1]; use a larger ratio`,
  };
}
