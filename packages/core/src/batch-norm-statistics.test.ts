import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { model as functionalModel, input, type LayersModel, layers } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { reestimateBatchNorm } from './batch-norm-statistics.js';

beforeAll(async () => {
  await initEngine();
});

/** input → conv → BatchNorm (momentum 0.9) → relu → conv → BatchNorm → pooled dense. */
function convNet(): LayersModel {
  const x = input({ shape: [6, 6, 3] });
  let y = layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c1' }).apply(x);
  y = layers.batchNormalization({ momentum: 0.9, name: 'bn1' }).apply(y);
  y = layers.reLU().apply(y);
  y = layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', name: 'c2' }).apply(y);
  y = layers.batchNormalization({ momentum: 0.9, name: 'bn2' }).apply(y);
  y = layers.globalAveragePooling2d({}).apply(y);
  y = layers.dense({ units: 2 }).apply(y);
  return functionalModel({ inputs: x, outputs: y as never });
}

const movingStatistics = (model: LayersModel, name: string) => {
  const [, , mean, variance] = model.getLayer(name).getWeights();
  return { mean: Array.from(mean!.dataSync()), variance: Array.from(variance!.dataSync()) };
};

describe('reestimateBatchNorm', () => {
  it('sets the first BatchNorm to the population mean and variance of its input', () => {
    const model = convNet();
    const images = tf.randomNormal([12, 6, 6, 3], 2, 3, 'float32', 7);
    const result = reestimateBatchNorm(model, images, { batchSize: 12 });
    expect(result).toEqual({ layers: ['bn1', 'bn2'], images: 12, batches: 1 });
    const conv = model.getLayer('c1').apply(images) as tf.Tensor;
    const { mean, variance } = tf.moments(conv, [0, 1, 2]);
    const got = movingStatistics(model, 'bn1');
    expect(got.mean).toEqual(Array.from(mean.dataSync()).map((v) => expect.closeTo(v, 4)));
    expect(got.variance).toEqual(Array.from(variance.dataSync()).map((v) => expect.closeTo(v, 3)));
    tf.dispose([images, conv, mean, variance]);
    model.dispose();
  });

  it('averages the per-batch statistics with equal weights, and restores the momentum', () => {
    const model = convNet();
    const images = tf.randomNormal([12, 6, 6, 3], 0, 1, 'float32', 8);
    const result = reestimateBatchNorm(model, images, { batchSize: 4 });
    expect(result.batches).toBe(3);
    const conv = model.getLayer('c1').apply(images) as tf.Tensor;
    const batchMeans = [0, 4, 8].map((s) => tf.moments(conv.slice(s, 4), [0, 1, 2]).mean);
    const expected = tf.div(tf.addN(batchMeans), 3);
    expect(movingStatistics(model, 'bn1').mean).toEqual(
      Array.from(expected.dataSync()).map((v) => expect.closeTo(v, 4)),
    );
    expect((model.getLayer('bn1') as unknown as { momentum: number }).momentum).toBe(0.9);
    tf.dispose([images, conv, expected, ...batchMeans]);
    model.dispose();
  });

  it('leaves no tensors behind and touches no trainable weight', () => {
    const model = convNet();
    const images = tf.randomNormal([10, 6, 6, 3], 0, 1, 'float32', 9);
    reestimateBatchNorm(model, images, { batchSize: 4 });
    const before = tf.memory().numTensors;
    const kernel = Array.from(model.getLayer('c2').getWeights()[0]!.dataSync());
    const previous = movingStatistics(model, 'bn2');
    reestimateBatchNorm(model, images, { batchSize: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(model.getLayer('c2').getWeights()[0]!.dataSync())).toEqual(kernel);
    expect(movingStatistics(model, 'bn2')).not.toEqual(previous);
    images.dispose();
    model.dispose();
  });

  it('says what is wrong with inputs that do not fit', () => {
    const model = convNet();
    const images = tf.zeros([4, 6, 6, 3]);
    expect(() => reestimateBatchNorm(model, [images, images])).toThrow(/takes 1 input\(s\), got 2/);
    const empty = tf.zeros([0, 6, 6, 3]);
    expect(() => reestimateBatchNorm(model, empty)).toThrow(/at least one image/);
    expect(() => reestimateBatchNorm(model, images, { batchSize: 0 })).toThrow(/positive integer, got 0/);
    tf.dispose([images, empty]);
    model.dispose();
  });
});
