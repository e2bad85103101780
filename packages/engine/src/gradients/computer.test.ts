import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../index.js';
import { createGradientComputer } from './computer.js';
import { GradientComputerClosedError, GradientOptionsError, InvalidBatchError } from './errors.js';
import { maxDifference } from './fixtures/compare.js';
import { copyModel, linearClassifier, randomBatch, smallConvNet } from './fixtures/models.js';

const exampleShape = [4, 4, 3];
const numClasses = 5;

beforeAll(async () => {
  // cpu: the reference backend, with every gradient kernel.
  await initEngine({ backend: 'cpu' });
});

describe('createGradientComputer with workers: 0', () => {
  it('gives the closed-form loss and gradients of a linear softmax classifier', async () => {
    const model = linearClassifier(exampleShape, numClasses);
    const labelSmoothing = 0.1;
    const computer = await createGradientComputer({ model, workers: 0, numClasses, labelSmoothing });
    const batch = randomBatch(6, exampleShape, numClasses);
    const result = await computer.compute(batch);

    // d(mean loss)/d(logits) = (softmax(logits) - targets) / batch, then back through the Dense layer.
    const [kernel, bias] = model.trainableWeights.map((weight) => weight.read());
    const expected = tf.tidy(() => {
      const inputs = tf.tensor2d(batch.images, [batch.count, 48]);
      const logits = tf.add(tf.matMul(inputs, kernel as tf.Tensor2D), bias as tf.Tensor1D);
      const targets = tf.add(
        tf.mul(tf.oneHot(tf.tensor1d(batch.labels, 'int32'), numClasses), 1 - labelSmoothing),
        labelSmoothing / numClasses,
      );
      const loss = tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1)));
      const dLogits = tf.div(tf.sub(tf.softmax(logits), targets), batch.count);
      const correct = tf.sum(
        tf.cast(tf.equal(tf.argMax(logits, -1), tf.tensor1d(batch.labels, 'int32')), 'int32'),
      );
      return [loss, tf.matMul(inputs, dLogits, true, false), tf.sum(dLogits, 0), correct].map((t) =>
        t.dataSync(),
      );
    });
    expect(result.loss).toBeCloseTo(expected[0]?.[0] ?? Number.NaN, 5);
    expect(result.correct).toBe(expected[3]?.[0]);
    expect(result.gradients).toHaveLength(2);
    for (const [i, gradient] of result.gradients.entries()) {
      const reference = expected[i + 1] ?? [];
      expect(gradient).toHaveLength(reference.length);
      expect(maxDifference(gradient, reference)).toBeLessThan(1e-5);
    }
  });

  it('reads a final softmax as probabilities, giving the same loss and gradients as logits', async () => {
    const logitsModel = linearClassifier(exampleShape, numClasses);
    const softmaxModel = linearClassifier(exampleShape, numClasses, 'softmax');
    softmaxModel.setWeights(logitsModel.getWeights());
    const batch = randomBatch(4, exampleShape, numClasses);
    const fromLogits = await (
      await createGradientComputer({ model: logitsModel, workers: 0, numClasses })
    ).compute(batch);
    const fromSoftmax = await (
      await createGradientComputer({ model: softmaxModel, workers: 0, numClasses })
    ).compute(batch);
    expect(fromSoftmax.loss).toBeCloseTo(fromLogits.loss, 5);
    for (const [i, gradient] of fromSoftmax.gradients.entries()) {
      expect(maxDifference(gradient, fromLogits.gradients[i] ?? [])).toBeLessThan(1e-4);
    }
  });

  it('updates BatchNorm moving statistics as model.fit does, and leaks no tensors over 50 steps', async () => {
    const model = smallConvNet([6, 6, 3], numClasses, { batchNorm: true });
    // The reference: one model.fit step on a copy, with a learning rate of 0 so only the statistics move.
    const reference = await copyModel(model);
    reference.compile({ optimizer: tf.train.sgd(0), loss: 'categoricalCrossentropy' });
    const batch = randomBatch(8, [6, 6, 3], numClasses);
    const [images, targets] = [
      tf.tensor4d(batch.images, [8, 6, 6, 3]),
      tf.oneHot(tf.tensor1d(batch.labels, 'int32'), numClasses),
    ];
    await reference.fit(images, targets, { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
    tf.dispose([images, targets]);

    const statistics = (of: tfl.LayersModel) =>
      of.nonTrainableWeights.map((weight) => weight.read().dataSync());
    const before = statistics(model);
    const computer = await createGradientComputer({ model, workers: 0, numClasses });
    await computer.compute(batch);
    const after = statistics(model);
    const expected = statistics(reference);
    for (const [i, values] of after.entries()) {
      // The statistics move by (1 − momentum) of the batch's: small for some unseeded inits, but never zero.
      expect(maxDifference(values, before[i] ?? [])).toBeGreaterThan(1e-7);
      expect(maxDifference(values, expected[i] ?? [])).toBeLessThan(1e-6);
    }

    const tensorsAfterFirstStep = tf.memory().numTensors;
    for (let step = 1; step < 50; step++) await computer.compute(batch);
    expect(tf.memory().numTensors).toBe(tensorsAfterFirstStep);
    expect(await computer.workerTensorCounts()).toEqual([]);
  });

  it('predicts as model.predict in inference mode, leaving BatchNorm statistics alone and leaking nothing', async () => {
    const model = smallConvNet([6, 6, 3], numClasses, { batchNorm: true });
    const computer = await createGradientComputer({ model, workers: 0, numClasses });
    await computer.compute(randomBatch(8, [6, 6, 3], numClasses)); // moving statistics away from their init
    const statistics = model.nonTrainableWeights.map((weight) => weight.read().dataSync());
    const batch = randomBatch(40, [6, 6, 3], numClasses, 2);
    const expected = tf.tidy(() =>
      (model.predict(tf.tensor4d(batch.images, [40, 6, 6, 3])) as tf.Tensor).dataSync(),
    );
    const outputs = await computer.predict(batch);
    expect(outputs).toHaveLength(40 * numClasses);
    expect(maxDifference(outputs, expected)).toBeLessThan(1e-6);
    expect(model.nonTrainableWeights.map((weight) => weight.read().dataSync())).toEqual(statistics);
    const tensors = tf.memory().numTensors;
    await computer.predict(batch);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('rejects bad options, bad batches and use after close with typed errors', async () => {
    const model = linearClassifier(exampleShape, numClasses);
    await expect(createGradientComputer({ model, workers: -1, numClasses })).rejects.toThrow(
      GradientOptionsError,
    );
    await expect(createGradientComputer({ model, workers: 0, numClasses: 4 })).rejects.toThrow(
      /outputs 5 scores/,
    );
    await expect(
      createGradientComputer({ model, workers: 0, numClasses, labelSmoothing: 1.5 }),
    ).rejects.toThrow(GradientOptionsError);
    const computer = await createGradientComputer({ model, workers: 0, numClasses });
    await expect(computer.compute(randomBatch(2, [4, 4, 2], numClasses))).rejects.toThrow(InvalidBatchError);
    await expect(computer.predict({ images: new Float32Array(47), count: 1 })).rejects.toThrow(
      InvalidBatchError,
    );
    await computer.close();
    await expect(computer.compute(randomBatch(2, exampleShape, numClasses))).rejects.toThrow(
      GradientComputerClosedError,
    );
    await expect(computer.predict(randomBatch(2, exampleShape, numClasses))).rejects.toThrow(
      GradientComputerClosedError,
    );
  });
});
