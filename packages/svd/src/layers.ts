import type { ConvShape, Layer } from '@decompose/core';
import { initializers, layers } from '@tensorflow/tfjs-layers';
import { Matrix } from 'ml-matrix';
import type { SvdMode } from './options.js';
import { svdConvShapes } from './rank.js';

/** A tfjs-layers activation name (`relu`, `linear`, ...). */
export type ConvActivation = NonNullable<Parameters<typeof layers.conv2d>[0]['activation']>;

/** A tfjs-layers activation name a `Dense` accepts. */
export type DenseActivation = NonNullable<Parameters<typeof layers.dense>[0]['activation']>;

/** Naming, activation and initialisation of the layers {@link buildSvdLayers} makes. */
export interface SvdLayerOptions {
  /** Prefix of the layer names: `<name>_svd_kxk` and `<name>_svd_1x1`, or `<name>_svd_kx1` and `<name>_svd_1xk`. */
  name: string;
  /** Activation of the last convolution (the original layer's). Default `linear`. */
  activation?: ConvActivation;
  /** Seed of the from-scratch initialisers; the same seed gives the same weights. Default 0. */
  seed?: number;
  /** Whether the layers train. Default true. */
  trainable?: boolean;
}

const LAYER_SUFFIXES: Record<SvdMode, [string, string]> = {
  weight: ['svd_kxk', 'svd_1x1'],
  spatial: ['svd_kx1', 'svd_1xk'],
};

/**
 * The two stock `Conv2D` layers (unbuilt) replacing a convolution of `shape` by its rank-`rank` SVD; see
 * {@link svdConvShapes} for their geometry. From-scratch initialisation: the first factor is LeCun-uniform
 * (variance 1/fan-in, so it keeps the input's scale through the linear bottleneck) and the second He-uniform
 * (variance 2/fan-in), so the composite kernel has the variance He initialisation gives the dense convolution,
 * the usual choice before a ReLU. Uniform, because tfjs's `*Normal` initialisers truncate without rescaling
 * and fall 12 % short of their nominal deviation. The bias starts at zero.
 */
export function buildSvdLayers(
  shape: ConvShape,
  mode: SvdMode,
  rank: number,
  options: SvdLayerOptions,
): Layer[] {
  const { name, activation = 'linear', seed = 0, trainable = true } = options;
  const [first, second] = svdConvShapes(shape, mode, rank);
  const [firstSuffix, secondSuffix] = LAYER_SUFFIXES[mode];
  return [
    layers.conv2d({
      ...convArgs(first),
      name: `${name}_${firstSuffix}`,
      kernelInitializer: initializers.leCunUniform({ seed }),
      trainable,
    }),
    layers.conv2d({
      ...convArgs(second),
      name: `${name}_${secondSuffix}`,
      activation,
      kernelInitializer: initializers.heUniform({ seed: seed + 1 }),
      biasInitializer: 'zeros',
      trainable,
    }),
  ];
}

/**
 * The two stock `Dense` layers (unbuilt, their input size comes from where they are applied) replacing a
 * Dense `C_in → units` by its rank-`rank` SVD:
 * `<name>_svd_in` (C_in → rank, no bias, linear) and `<name>_svd_out` (rank → units, the original bias
 * and activation). From scratch: LeCun-uniform then He-uniform, as {@link buildSvdLayers}; the bias starts at 0.
 */
export function buildSvdDenseLayers(
  units: number,
  useBias: boolean,
  rank: number,
  options: Omit<SvdLayerOptions, 'activation'> & { activation?: DenseActivation },
): Layer[] {
  const { name, activation = 'linear', seed = 0, trainable = true } = options;
  return [
    layers.dense({
      name: `${name}_svd_in`,
      units: rank,
      useBias: false,
      kernelInitializer: initializers.leCunUniform({ seed }),
      trainable,
    }),
    layers.dense({
      name: `${name}_svd_out`,
      units,
      useBias,
      activation,
      kernelInitializer: initializers.heUniform({ seed: seed + 1 }),
      biasInitializer: 'zeros',
      trainable,
    }),
  ];
}

function convArgs(shape: ConvShape) {
  return {
    filters: shape.outChannels,
    kernelSize: [...shape.kernelSize],
    strides: [...shape.strides],
    dilationRate: [...shape.dilation] as [number, number],
    padding: shape.padding,
    useBias: shape.useBias,
  };
}

/**
 * The kernel (tfjs layout `[k_h, k_w, C_in, C_out]`, flattened) as the matrix the mode factorizes:
 * `weight`: (k_h·k_w·C_in) × C_out; `spatial`: (k_h·C_in) × (k_w·C_out), rows (i, c) and columns (j, o).
 */
export function kernelMatrix(kernel: ArrayLike<number>, shape: ConvShape, mode: SvdMode): Matrix {
  const [kh, kw] = shape.kernelSize;
  const { inChannels: cin, outChannels: cout } = shape;
  if (mode === 'weight') return Matrix.from1DArray(kh * kw * cin, cout, kernel);
  const matrix = new Matrix(kh * cin, kw * cout);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let c = 0; c < cin; c++) {
        for (let o = 0; o < cout; o++) {
          matrix.set(i * cin + c, j * cout + o, kernel[((i * kw + j) * cin + c) * cout + o]!);
        }
      }
    }
  }
  return matrix;
}

/**
 * The two layers' kernels (flattened, tfjs layout) from the factors of {@link kernelMatrix}:
 * `left` (rows × r) and `right` (r × columns).
 */
export function factorKernels(
  left: Matrix,
  right: Matrix,
  shape: ConvShape,
  mode: SvdMode,
): [Float32Array, Float32Array] {
  const first = Float32Array.from(left.to1DArray());
  if (mode === 'weight') return [first, Float32Array.from(right.to1DArray())];
  // right is r × (k_w·C_out) with columns (j, o); the 1×k_w kernel is [1, k_w, r, C_out].
  const [, kw] = shape.kernelSize;
  const rank = right.rows;
  const cout = shape.outChannels;
  const second = new Float32Array(kw * rank * cout);
  for (let j = 0; j < kw; j++) {
    for (let t = 0; t < rank; t++) {
      for (let o = 0; o < cout; o++) second[(j * rank + t) * cout + o] = right.get(t, j * cout + o);
    }
  }
  return [first, second];
}
