import {
  add,
  backend_util,
  engine,
  FusedBatchNorm,
  type FusedBatchNormAttrs,
  type GradConfig,
  getBackend,
  getKernel,
  mul,
  type NamedAttrMap,
  neg,
  reshape,
  rsqrt,
  scalar,
  sub,
  sum,
  type Tensor,
} from '@tensorflow/tfjs-core';
import { BATCH_NORM_GRAD_SUMS } from './batch-norm-sums.js';

/**
 * Gradient of the `FusedBatchNorm` kernel (what `tf.batchNorm` and the stock tfjs-layers `BatchNormalization`
 * layer run), equal to tfjs-core's own up to float rounding on every backend.
 *
 * tfjs-core's version tiles 1/√(var+ε) to the full input shape before multiplying and computes x − mean and
 * dy·scale separately for every input; here every full-size term is computed once and per-channel factors are
 * folded together first, so the only full-size work is dy·g and the two per-channel sums Σ dy, Σ dy·(x − mean)
 * (one pass on wasm, through the engine's {@link BATCH_NORM_GRAD_SUMS} kernel).
 */
export const fusedBatchNormGradConfig: GradConfig = {
  kernelName: FusedBatchNorm,
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const dyTensor = Array.isArray(dy) ? (dy[0] as Tensor) : dy;
    const { varianceEpsilon } = attrs as unknown as FusedBatchNormAttrs;
    const [x, mean, variance, scale] = saved as [Tensor, Tensor, Tensor, Tensor | undefined];
    const axes = backend_util.getReductionAxes(mean.shape, x.shape);
    const perChannel = (t: Tensor): Tensor => reshape(sum(t, axes), mean.shape);

    const inverseStd = rsqrt(add(variance, scalar(varianceEpsilon)));
    // g = scale / √(var + ε): the only factor dy is multiplied by on the way to x.
    const gain = scale === undefined ? inverseStd : mul(inverseStd, scale);
    // Σ dy and Σ dy·(x − mean) (shared by the mean, variance, scale and offset gradients): one pass where the
    // backend has the engine's kernel for it, tfjs ops elsewhere.
    const channels = x.shape[x.shape.length - 1];
    const fusedSums =
      getKernel(BATCH_NORM_GRAD_SUMS, getBackend()) !== undefined &&
      x.dtype === 'float32' &&
      dyTensor.dtype === 'float32' &&
      mean.size === channels &&
      mean.shape[mean.shape.length - 1] === channels &&
      axes.length === x.rank - 1;
    const [sumDy, sumDyCentered] = (
      fusedSums
        ? (engine().runKernel(BATCH_NORM_GRAD_SUMS, { x, dy: dyTensor, mean }, {}) as Tensor[]).map((t) =>
            reshape(t, mean.shape),
          )
        : [perChannel(dyTensor), perChannel(mul(dyTensor, sub(x, mean)))]
    ) as [Tensor, Tensor];

    return {
      x: () => mul(dyTensor, gain),
      mean: () => neg(mul(gain, sumDy)),
      variance: () => mul(mul(gain, mul(inverseStd, inverseStd)), mul(sumDyCentered, scalar(-0.5))),
      scale: () => reshape(mul(sumDyCentered, inverseStd), scale?.shape ?? mean.shape),
      offset: () => sumDy,
    };
  },
};
