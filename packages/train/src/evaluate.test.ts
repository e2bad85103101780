import { createBatchStream, type ImageSet } from '@decompose/cifar10';
import {
  createGradientComputer,
  type GradientComputer,
  GradientWorkerError,
  initEngine,
  softmaxCrossEntropy,
} from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModelDataMismatchError } from './errors.js';
import { evaluate, modelGeometry } from './evaluate.js';
import { augmentedImages } from './images.js';
import { syntheticImages, tinyModel } from './test-fixtures.js';
import { train } from './train.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

describe('evaluate', () => {
  const data = syntheticImages(30);

  it('gives the loss and accuracy of the whole set, whatever the batch size', async () => {
    const model = tinyModel();
    const [whole] = [...createBatchStream(data, { batchSize: 30, shuffle: false }).epoch(0)];
    const [loss, predictions] = tf.tidy(() => {
      const logits = model.predict(tf.tensor4d(whole!.images, [30, 32, 32, 3])) as tf.Tensor2D;
      return [
        softmaxCrossEntropy(logits, tf.tensor1d(whole!.labels, 'int32'), 10, 0).dataSync()[0]!,
        tf.argMax(logits, -1).dataSync(),
      ];
    });
    const correct = whole!.labels.filter((label, i) => predictions[i] === label).length;

    const result = await evaluate(model, data, 8);
    expect(result.count).toBe(30);
    expect(result.loss).toBeCloseTo(loss, 5);
    expect(result.accuracy).toBe(correct / 30);
    expect(result.imagesPerSecond).toBeGreaterThan(0);
  });

  it('runs in inference mode (BatchNorm statistics unchanged) and leaks no tensors', async () => {
    const model = tinyModel();
    const statistics = () =>
      model
        .getLayer('bn')
        .getWeights()
        .map((w) => Array.from(w.dataSync()));
    const before = statistics();
    await evaluate(model, data, 16);
    const tensors = tf.memory().numTensors;
    await evaluate(model, data, 16);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(statistics()).toEqual(before);
  });
});

describe('a model that does not fit CIFAR-10 images', () => {
  const data = syntheticImages(8);
  const classifier = (shape: number[], classes: number) => {
    const input = tfl.input({ shape });
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(input) as tfl.SymbolicTensor;
    const logits = tfl.layers.dense({ units: classes }).apply(pooled) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: logits, name: 'imagenet_like' });
  };

  it.each([
    { what: 'a 224×224 input', shape: [224, 224, 3], classes: 10, named: /\[224, 224, 3\].*\[32, 32, 3\]/ },
    { what: 'channels first', shape: [3, 32, 32], classes: 10, named: /\[3, 32, 32\].*\[32, 32, 3\]/ },
    { what: '1000 classes', shape: [32, 32, 3], classes: 1000, named: /1000 classes.*10 classes/ },
  ])('is refused by evaluate and train before any step ($what)', async ({ shape, classes, named }) => {
    const model = classifier(shape, classes);
    const tensors = tf.memory().numTensors;
    await expect(evaluate(model, data, 8)).rejects.toThrow(ModelDataMismatchError);
    await expect(evaluate(model, data, 8)).rejects.toThrow(named);
    await expect(
      train({ model, trainData: data, epochs: 1, batchSize: 4, schedule: { type: 'constant', lr: 0.1 } }),
    ).rejects.toThrow(/imagenet_like.*Use a model built for 32×32×3 inputs and 10 classes/);
    expect(tf.memory().numTensors).toBe(tensors);
    model.dispose();
  });
});

describe('evaluate over gradient workers', () => {
  const data = syntheticImages(30);

  it('gives the loss and accuracy of main-thread evaluation, with the main model’s current weights', async () => {
    const model = tinyModel();
    const computer = await createGradientComputer({ model, workers: 2, numClasses: 10, backend: 'cpu' });
    try {
      // A step moves the BatchNorm statistics, then the main thread changes every weight on its own (as the
      // optimizer does after each step): the workers must evaluate with these.
      const [batch] = [...createBatchStream(data, { batchSize: 16, shuffle: false }).epoch(0)];
      await computer.compute(batch!);
      const changed = model.getWeights().map((w) => tf.add(tf.mul(w, 1.1), 0.01));
      model.setWeights(changed);
      tf.dispose(changed);

      const here = await evaluate(model, data, 8);
      const split = await evaluate(model, data, 8, { computer });
      expect(split.count).toBe(30);
      expect(split.loss).toBeCloseTo(here.loss, 5);
      expect(split.accuracy).toBe(here.accuracy);

      const tensors = tf.memory().numTensors;
      const workerTensors = await computer.workerTensorCounts();
      await evaluate(model, data, 8, { computer });
      expect(tf.memory().numTensors).toBe(tensors);
      expect(await computer.workerTensorCounts()).toEqual(workerTensors);
    } finally {
      await computer.close();
    }
  });

  it('rejects, leaking nothing, when a worker dies (the pool itself is tested in @decompose/engine)', async () => {
    const model = tinyModel();
    const failure = new GradientWorkerError(1, 'step', 'the thread exited with code 3');
    const dying: GradientComputer = {
      workers: 2,
      compute: () => Promise.reject(failure),
      predict: () => Promise.reject(failure),
      workerTensorCounts: () => Promise.resolve([]),
      close: () => Promise.resolve(),
    };
    const tensors = tf.memory().numTensors;
    await expect(evaluate(model, data, 8, { computer: dying })).rejects.toBe(failure);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});

describe('a model and data of another image shape', () => {
  // Ten 16×12×3 images of 4 classes, with their own class names and normalisation.
  const other = (): ImageSet => {
    const count = 10;
    const images = Uint8Array.from({ length: count * 16 * 12 * 3 }, (_, i) => (i * 37) % 256);
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 4);
    return {
      images,
      labels,
      count,
      shape: [16, 12, 3],
      classNames: ['a', 'b', 'c', 'd'],
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    };
  };
  const classifier = (shape: number[], classes: number) => {
    const input = tfl.input({ shape });
    const conv = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input);
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(conv) as tfl.SymbolicTensor;
    const logits = tfl.layers.dense({ units: classes }).apply(pooled) as tfl.SymbolicTensor;
    return tfl.model({ inputs: input, outputs: logits, name: 'other_shape' });
  };

  it('are trained and evaluated at their shape, and checked against it', async () => {
    const data = other();
    const model = classifier([16, 12, 3], 4);
    expect(modelGeometry(model, data)).toEqual({ exampleShape: [16, 12, 3], numClasses: 4 });
    const tensors = tf.memory().numTensors;
    for (let repeat = 0; repeat < 2; repeat++) {
      await train({
        model,
        trainData: data,
        epochs: 1,
        batchSize: 4,
        workers: 0,
        schedule: { type: 'constant', lr: 0.01 },
      });
      const result = await evaluate(model, data, 4);
      expect(result.count).toBe(10);
      expect(Number.isFinite(result.loss)).toBe(true);
      const augmented = augmentedImages(data, 3);
      expect(augmented.shape).toEqual([3, 16, 12, 3]);
      augmented.dispose();
    }
    expect(tf.memory().numTensors).toBe(tensors);
    // CIFAR-shaped data for this model is refused, naming both.
    expect(() => modelGeometry(model, syntheticImages(4))).toThrow(
      /'other_shape' takes input \[16, 12, 3\] and predicts 4 classes.*\[32, 32, 3\] images .* of 10 classes \(CIFAR-10\)/,
    );
    model.dispose();
    const wrongClasses = classifier([16, 12, 3], 10);
    expect(() => modelGeometry(wrongClasses, data, 'images/')).toThrow(
      /predicts 10 classes, but the data are \[16, 12, 3\] images \(channels last\) of 4 classes \(images\/\)/,
    );
    wrongClasses.dispose();
  });
});
