// Stand-ins shared by this package's tests: a tiny seeded conv/BN/dense model and synthetic CIFAR-shaped data.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Cifar10Images } from '@decompose/cifar10';
import * as tfl from '@tensorflow/tfjs-layers';

/**
 * conv(3×3, stride 4) → BatchNorm → ReLU → global average pool → dense(10), seeded, with fixed layer names
 * so that two instances have the same weight names (as checkpoints require).
 */
export function tinyModel(filters = 4, seed = 1): tfl.LayersModel {
  const input = tfl.input({ shape: [32, 32, 3] });
  let x = tfl.layers
    .conv2d({
      name: 'conv',
      filters,
      kernelSize: 3,
      strides: 4,
      padding: 'same',
      useBias: false,
      kernelInitializer: tfl.initializers.heNormal({ seed }),
    })
    .apply(input) as tfl.SymbolicTensor;
  x = tfl.layers
    .batchNormalization({ name: 'bn', epsilon: 1e-5, momentum: 0.9 })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'relu' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const output = tfl.layers
    .dense({ name: 'fc', units: 10, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output, name: 'tiny' });
}

/** `count` pseudo-random 32×32×3 images whose labels depend on the mean of the red channel (learnable). */
export function syntheticImages(count: number, seed = 7): Cifar10Images {
  const images = new Uint8Array(count * 32 * 32 * 3);
  let state = seed >>> 0;
  for (let i = 0; i < images.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    images[i] = state >>> 24;
  }
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = i % 10;
  // Brighten the red channel by class so that the data carries signal.
  for (let i = 0; i < count; i++) {
    for (let p = 0; p < 32 * 32; p++) {
      const at = (i * 32 * 32 + p) * 3;
      images[at] = Math.min(255, (images[at]! >> 1) + labels[i]! * 12);
    }
  }
  return { images, labels, count };
}

/** A fresh temporary directory, and a function that removes it. */
export async function temporaryDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'decompose-train-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
