import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { PackedFormatError } from './errors.js';
import { packImageSet, unpackImageSet } from './image-sets.js';
import { loadPackedModel, packModel, unpackModel } from './models.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

function smallModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input);
  x = tfl.layers.batchNormalization({ name: 'bn' }).apply(x);
  x = tfl.layers.globalAveragePooling2d({}).apply(x);
  const output = tfl.layers.dense({ units: 5, name: 'head' }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

describe('packModel / loadPackedModel', () => {
  it('round-trips a model: same outputs, same bytes for the same model, plugins kept, nothing leaked', async () => {
    const model = smallModel();
    const before = tf.memory().numTensors;
    const bytes = await packModel(model, ['some-plugin']);
    expect(await packModel(model, ['some-plugin'])).toEqual(bytes);
    expect(unpackModel(bytes).plugins).toEqual(['some-plugin']);
    const imported: string[] = [];
    const loaded = await loadPackedModel(bytes, async (specifier) => {
      imported.push(specifier);
    });
    expect(imported).toEqual(['some-plugin']);
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 1);
    const difference = tf.tidy(
      () =>
        tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor))).dataSync()[0],
    );
    expect(difference).toBe(0);
    x.dispose();
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('refuses bytes that are not a packed model, or are cut short, with PackedFormatError', async () => {
    const model = smallModel();
    const bytes = await packModel(model);
    model.dispose();
    expect(() => unpackModel(new Uint8Array([1, 2, 3]))).toThrow(PackedFormatError);
    expect(() => unpackModel(bytes.subarray(0, bytes.length - 4))).toThrow(/need \d+ bytes, not/);
    expect(() =>
      unpackModel(
        packImageSet({ images: new Uint8Array(3), labels: new Uint8Array(1), count: 1, shape: [1, 1, 3] }),
      ),
    ).toThrow(/do not start with 'DCMD'/);
  });
});

describe('packImageSet / unpackImageSet', () => {
  it('round-trips pixels, labels, shape, class names and normalisation', () => {
    const set = {
      images: Uint8Array.from({ length: 2 * 4 * 5 * 3 }, (_, i) => i % 256),
      labels: Uint8Array.from([1, 0]),
      count: 2,
      shape: [4, 5, 3] as const,
      classNames: ['cat', 'dog'],
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    };
    const unpacked = unpackImageSet(packImageSet(set));
    expect(unpacked).toEqual({ ...set, shape: [4, 5, 3] });
  });

  it('keeps CIFAR-10 defaults implicit and refuses a short payload', () => {
    const set = { images: new Uint8Array(32 * 32 * 3), labels: Uint8Array.from([3]), count: 1 };
    const bytes = packImageSet(set);
    const unpacked = unpackImageSet(bytes);
    expect(unpacked.shape).toEqual([32, 32, 3]);
    expect(unpacked.classNames).toBeUndefined();
    expect(() => unpackImageSet(bytes.subarray(0, bytes.length - 1))).toThrow(PackedFormatError);
  });
});
