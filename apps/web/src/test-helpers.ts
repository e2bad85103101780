import { type ImageSet, RECORD_BYTES } from '@decompose/cifar10/browser';
import { readImageFolder, writeSyntheticImageFolder } from '@decompose/images';
import * as tfl from '@tensorflow/tfjs-layers';

/** A CIFAR-10 batch of `labels.length` records whose byte at record r, offset i is `(r * 7 + i) % 256`. */
export function syntheticBatch(labels: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(labels.length * RECORD_BYTES);
  labels.forEach((label, record) => {
    bytes[record * RECORD_BYTES] = label;
    for (let i = 1; i < RECORD_BYTES; i++) bytes[record * RECORD_BYTES + i] = (record * 7 + i) % 256;
  });
  return bytes;
}

/** A small stock-layers classifier of `shape` images (default CIFAR-10's 32×32×3) into `classes` logits (10). */
export function tinyClassifier(shape: readonly number[] = [32, 32, 3], classes = 10): tfl.LayersModel {
  const input = tfl.input({ shape: [...shape] });
  const conv = tfl.layers
    .conv2d({ filters: 4, kernelSize: 3, kernelInitializer: 'glorotNormal' })
    .apply(input);
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(conv);
  const logits = tfl.layers.dense({ units: classes, kernelInitializer: 'glorotNormal' }).apply(pooled);
  return tfl.model({ inputs: input, outputs: logits as tfl.SymbolicTensor });
}

/** The non-CIFAR geometry the tests use: 24×24 RGB images of three classes. */
export const SMALL_SHAPE = [24, 24, 3] as const;
/** The class (subfolder) names of the synthetic image folder, sorted as readImageFolder sorts them. */
export const SMALL_CLASSES = ['circle', 'square', 'triangle'] as const;

/**
 * Writes a synthetic image folder of {@link SMALL_CLASSES} (30×30 PNGs and JPEGs, `perClass` a class, so
 * reading resizes them) into `dir` and reads it at {@link SMALL_SHAPE}, normalised with `mean`/`std`: the
 * test split, as `decompose web --data <dir> --input-size 24x24` reads it.
 */
export async function smallImageSet(
  dir: string,
  { perClass = 10, mean = [0.5, 0.5, 0.5], std = [0.25, 0.25, 0.25] } = {},
): Promise<ImageSet> {
  await writeSyntheticImageFolder(dir, { classes: SMALL_CLASSES, perClass, size: [30, 30] });
  const folder = await readImageFolder(dir, { size: [SMALL_SHAPE[0], SMALL_SHAPE[1]], mean, std });
  return folder.test;
}

/**
 * A seeded stock classifier of {@link SMALL_SHAPE} images into {@link SMALL_CLASSES} logits, random weights:
 * conv `conv1` (8 filters) → max pool → conv `conv2` (16) → global average pool → dense `fc`.
 */
export function smallClassifier(seed = 0): tfl.LayersModel {
  const init = (offset: number) => tfl.initializers.glorotNormal({ seed: seed * 10 + offset });
  const input = tfl.input({ shape: [...SMALL_SHAPE] });
  let x = tfl.layers
    .conv2d({
      name: 'conv1',
      filters: 8,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(1),
    })
    .apply(input);
  x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x);
  x = tfl.layers
    .conv2d({
      name: 'conv2',
      filters: 16,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: init(2),
    })
    .apply(x);
  x = tfl.layers.globalAveragePooling2d({}).apply(x);
  const logits = tfl.layers
    .dense({ name: 'fc', units: SMALL_CLASSES.length, kernelInitializer: init(3) })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits });
}
