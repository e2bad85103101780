import { addCosts, type ConvShape, convCost, type LayerCost, withConv } from '@decompose/core';
import { SvdRankError } from './errors.js';
import type { SvdMode, SvdOptions } from './options.js';

/**
 * Geometry of the two convolutions that replace `shape` at rank r, in order. `weight`: the k×k convolution
 * (original stride, padding, dilation) to r channels, then a 1×1 to C_out. `spatial`: a k_h×1 convolution with
 * the vertical stride and dilation to r channels, then a 1×k_w with the horizontal ones. 'same' and 'valid'
 * padding split the same way, because TensorFlow pads each axis independently of the other.
 * The bias goes on the last convolution only.
 */
export function svdConvShapes(shape: ConvShape, mode: SvdMode, rank: number): [ConvShape, ConvShape] {
  const [kh, kw] = shape.kernelSize;
  const [sh, sw] = shape.strides;
  const [dh, dw] = shape.dilation;
  if (mode === 'weight') {
    return [
      withConv(shape, { outChannels: rank, useBias: false }),
      withConv(shape, {
        kernelSize: [1, 1],
        inChannels: rank,
        strides: [1, 1],
        dilation: [1, 1],
        inputSize: shape.outputSize,
      }),
    ];
  }
  const middle: [number, number] = [shape.outputSize[0], shape.inputSize[1]];
  return [
    withConv(shape, {
      kernelSize: [kh, 1],
      outChannels: rank,
      strides: [sh, 1],
      dilation: [dh, 1],
      useBias: false,
      outputSize: middle,
    }),
    withConv(shape, {
      kernelSize: [1, kw],
      inChannels: rank,
      strides: [1, sw],
      dilation: [1, dw],
      inputSize: middle,
    }),
  ];
}

/** Exact cost of the rank-`rank` SVD replacement of a convolution of this shape. */
export function svdCost(shape: ConvShape, mode: SvdMode, rank: number): LayerCost {
  return addCosts(...svdConvShapes(shape, mode, rank).map(convCost));
}

/**
 * The largest rank the mode can use: the smaller side of the reshaped kernel, min(k_h·k_w·C_in, C_out) for
 * `weight` and min(k_h·C_in, k_w·C_out) for `spatial`. At this rank the replacement is exact.
 */
export function maxRank(shape: ConvShape, mode: SvdMode): number {
  const [kh, kw] = shape.kernelSize;
  return mode === 'weight'
    ? Math.min(kh * kw * shape.inChannels, shape.outChannels)
    : Math.min(kh * shape.inChannels, kw * shape.outChannels);
}

/** Largest rank (≤ {@link maxRank}) whose replacement has at most `params` parameters; 0 when not even rank 1. */
function largestRankWithin(shape: ConvShape, mode: SvdMode, params: number): number {
  const bias = shape.useBias ? shape.outChannels : 0;
  const perRank = svdCost(shape, mode, 1).params - bias;
  return Math.min(maxRank(shape, mode), Math.max(0, Math.floor((params - bias) / perRank)));
}

/**
 * The largest rank whose SVD replacement of a convolution of this shape fits in `params` parameters (bias
 * included), capped at {@link maxRank}. Throws {@link SvdRankError} when even rank 1 does not fit.
 */
export function rankForParams(shape: ConvShape, params: number, mode: SvdMode = 'weight'): number {
  const rank = largestRankWithin(shape, mode, params);
  if (rank < 1) {
    throw new SvdRankError(
      `A budget of ${params} parameters is below the ${svdCost(shape, mode, 1).params} of a rank-1 ${mode} SVD; raise the budget.`,
    );
  }
  return rank;
}

/** How the options fix the rank of a layer: directly, from the trained spectrum (energy), or not at all. */
export type RankPlan = { rank: number } | { energy: number } | { reason: string };

/** Resolves the rank the options ask for on a convolution of this shape, or why it cannot be served. */
export function planRank(shape: ConvShape, options: SvdOptions): RankPlan {
  const limit = maxRank(shape, options.mode);
  if (options.energy !== undefined) return { energy: options.energy };
  if (options.rank !== undefined) {
    if (options.rank <= limit) return { rank: options.rank };
    return {
      reason: `rank ${options.rank} exceeds the largest ${options.mode} SVD rank ${limit} of this layer (${describeLimit(shape, options.mode)}); use a rank ≤ ${limit}`,
    };
  }
  const ratio = options.ratio;
  if (ratio === undefined) return { reason: 'give exactly one of rank, ratio or energy' };
  const budget = ratio * convCost(shape).params;
  const rank = largestRankWithin(shape, options.mode, budget);
  if (rank >= 1) return { rank };
  return {
    reason: `ratio ${ratio} allows ${Math.floor(budget)} parameters, below the ${svdCost(shape, options.mode, 1).params} of rank 1; use a larger ratio`,
  };
}

function describeLimit(shape: ConvShape, mode: SvdMode): string {
  const [kh, kw] = shape.kernelSize;
  const { inChannels: cin, outChannels: cout } = shape;
  return mode === 'weight' ? `min(${kh}·${kw}·${cin}, ${cout})` : `min(${kh}·${cin}, ${kw}·${cout})`;
}
