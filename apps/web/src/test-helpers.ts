import { RECORD_BYTES } from '@decompose/cifar10/browser';
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

/** A small stock-layers classifier of 32×32×3 images into 10 logits. */
export function tinyClassifier(): tfl.LayersModel {
  const input = tfl.input({ shape: [32, 32, 3] });
  const conv = tfl.layers
    .conv2d({ filters: 4, kernelSize: 3, kernelInitializer: 'glorotNormal' })
    .apply(input);
  const pooled = tfl.layers.globalAveragePooling2d({}).apply(conv);
  const logits = tfl.layers.dense({ units: 10, kernelInitializer: 'glorotNormal' }).apply(pooled);
  return tfl.model({ inputs: input, outputs: logits as tfl.SymbolicTensor });
}
