import * as tfl from '@tensorflow/tfjs-layers';
import type { InitScheme } from './options.js';

type Initializer = ReturnType<typeof tfl.initializers.randomNormal>;

/**
 * The seed of one weight: FNV-1a of `seed:layer/weight`, so a layer's initial weights depend on the model
 * seed and its own name only, not on how many layers were built before it.
 */
function weightSeed(seed: number, layerName: string, weight: string): number {
  let hash = 0x811c9dc5;
  for (const char of `${seed}:${layerName}/${weight}`) {
    hash ^= char.codePointAt(0) ?? 0;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** U(-1/√fan_in, 1/√fan_in): PyTorch's default for Conv2d/Linear weights (kaiming_uniform, a=√5) and biases. */
function pytorchUniform(fanIn: number, seed: number): Initializer {
  const bound = 1 / Math.sqrt(fanIn);
  return tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed });
}

/** Kernel initializer of a conv with a `kernelSize`² window from `inChannels` to `outChannels`. */
export function convKernelInitializer(
  scheme: InitScheme,
  seed: number,
  layerName: string,
  kernelSize: number,
  inChannels: number,
  outChannels: number,
): Initializer {
  const weight = weightSeed(seed, layerName, 'kernel');
  if (scheme === 'he-normal') {
    const fanOut = kernelSize * kernelSize * outChannels;
    return tfl.initializers.randomNormal({ mean: 0, stddev: Math.sqrt(2 / fanOut), seed: weight });
  }
  return pytorchUniform(kernelSize * kernelSize * inChannels, weight);
}

/** Kernel and bias initializers of the classifier: PyTorch's Linear default under either scheme. */
export function denseInitializers(
  seed: number,
  layerName: string,
  inFeatures: number,
): { kernelInitializer: Initializer; biasInitializer: Initializer } {
  return {
    kernelInitializer: pytorchUniform(inFeatures, weightSeed(seed, layerName, 'kernel')),
    biasInitializer: pytorchUniform(inFeatures, weightSeed(seed, layerName, 'bias')),
  };
}
