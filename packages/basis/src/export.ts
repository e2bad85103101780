import type { StockLowering } from '@decompose/core';
import * as tf from '@tensorflow/tfjs-core';
import { layers } from '@tensorflow/tfjs-layers';
import type { BasisConv2D } from './basis-conv2d.js';
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
