import type { StockLowering } from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import { layers } from '@tensorflow/tfjs-layers';
import type { BasisConv2D } from './basis-conv2d.js';
import type { BasisDense } from './basis-dense.js';
import { factoredPays } from './cost.js';
import { BasisConfigError } from './errors.js';

/**
 * The stock layers a {@link BasisConv2D} lowers to (its `lowerToStock()`, which core's `exportStock` calls):
 *
 * - as a rule, a k×k `Conv2D` `<name>_basis` (C_in → m, the basis filters B, no bias, the layer's strides,
 *   padding and dilation) followed by a 1×1 `Conv2D` `<name>_combine` (m → C_out, weight `[I_m | A'ᵀ]` with its
 *   columns in output order, or Aᵀ for the full form; the layer's bias and activation);
 * - one k×k `Conv2D` `<name>` when that pair costs more than the dense convolution (W = A·B; where the layer runs
 *   folded, {@link factoredPays}), or when the layer needs no combination (m = C_out in identity order).
 *
 * The caller owns the returned weights.
 */
export function lowerBasisConv2D(layer: BasisConv2D): StockLowering {
  if (!layer.built) {
    throw new BasisConfigError(
      `lowerToStock() needs a built layer: '${layer.name}' was never applied to an input or a model.`,
    );
  }
  const [kh, kw] = layer.kernelSize;
  const inChannels = layer.weights[0]!.shape[2]!;
  if (!layer.mixes || !factoredPays(kh * kw, inChannels, layer.filters, layer.basisSize)) {
    const { config, weights } = layer.toDense();
    return { layers: [layers.conv2d({ ...config, name: layer.name })], weights: [weights] };
  }
  const weights = tf.tidy(() => {
    const basis = layer.weights[0]!.read().clone();
    const mixing = tf.reshape(layer.mixingMatrix()!, [1, 1, layer.basisSize, layer.filters]);
    const bias = layer.useBias ? [layer.weights.at(-1)!.read().clone()] : [];
    return [[basis], [mixing, ...bias]];
  });
  const geometry = {
    strides: [...layer.strides] as [number, number],
    padding: layer.padding,
    dilationRate: [...layer.dilationRate] as [number, number],
  };
  return {
    layers: [
      layers.conv2d({
        name: `${layer.name}_basis`,
        filters: layer.basisSize,
        kernelSize: [kh, kw],
        ...geometry,
        useBias: false,
        activation: 'linear',
      }),
      layers.conv2d({
        name: `${layer.name}_combine`,
        filters: layer.filters,
        kernelSize: [1, 1],
        useBias: layer.useBias,
        activation: layer.activation,
      }),
    ],
    weights,
  };
}

/**
 * The stock layers a {@link BasisDense} lowers to, as {@link lowerBasisConv2D} for convolutions: a `Dense`
 * `<name>_basis` (C_in → m, the basis neurons B, no bias) followed by a `Dense` `<name>_combine` (m → units,
 * kernel `[I_m | A'ᵀ]` in output order, or Aᵀ for the full form; the layer's bias and activation), or one `Dense`
 * `<name>` with kernel B·[I_m | A'ᵀ] when that pair costs more or no combination is needed.
 *
 * The caller owns the returned weights.
 */
export function lowerBasisDense(layer: BasisDense): StockLowering {
  if (!layer.built) {
    throw new BasisConfigError(
      `lowerToStock() needs a built layer: '${layer.name}' was never applied to an input or a model.`,
    );
  }
  const [basisKernel, ...rest] = layer.weights;
  const inFeatures = basisKernel!.shape[0]!;
  const bias = () => (layer.useBias ? [rest.at(-1)!.read().clone()] : []);
  const mixing = () => layer.mixingMatrix();
  const common = { units: layer.units, useBias: layer.useBias, activation: layer.activation };
  if (!layer.mixes || !factoredPays(1, inFeatures, layer.units, layer.basisSize)) {
    const weights = tf.tidy(() => {
      const combination = mixing();
      const kernel =
        combination === null
          ? basisKernel!.read().clone()
          : tf.matMul(basisKernel!.read() as tf.Tensor2D, combination);
      return [[kernel, ...bias()]];
    });
    return { layers: [layers.dense({ ...common, name: layer.name })], weights };
  }
  const weights = tf.tidy(() => [[basisKernel!.read().clone()], [mixing()!.clone(), ...bias()]]);
  return {
    layers: [
      layers.dense({
        name: `${layer.name}_basis`,
        units: layer.basisSize,
        useBias: false,
        activation: 'linear',
      }),
      layers.dense({ ...common, name: `${layer.name}_combine` }),
    ],
    weights,
  };
}
