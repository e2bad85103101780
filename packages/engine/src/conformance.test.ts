import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  checkTrainable,
  createGradientComputer,
  type GradientResult,
  initEngine,
  UntrainableLayerError,
} from './index.js';
import { relativeError, seededValues } from './kernels/parity-helpers.js';

// One train step of a tiny model around each tfjs-layers class a CNN commonly uses: on wasm with the engine's
// kernels it must give the cpu backend's loss and weight gradients, and leak nothing.

type Layer = (x: tfl.SymbolicTensor) => tfl.SymbolicTensor;
interface SweepCase {
  name: string;
  /** The example shape; default [8, 8, 3]. */
  input?: number[];
  /** The layers under test, after a 3×3 convolution stem (so the stem's gradient checks their input gradient). */
  body: Layer;
  /** No stem: the layers under test see the input directly (Conv1D, channels-first). */
  noStem?: boolean;
  /** The stem's useBias; default true. */
  stemBias?: boolean;
  /**
   * The cpu reference as the mean of one-image steps: tfjs-backend-cpu 4.22's ResizeNearestNeighborGrad reads dy
   * at the images' batch stride, so its gradient is wrong from the second image on (wasm's is right).
   */
  cpuPerImage?: boolean;
}

const apply =
  (layer: tfl.layers.Layer): Layer =>
  (x) =>
    layer.apply(x) as tfl.SymbolicTensor;
const chain =
  (...layers: Layer[]): Layer =>
  (x) =>
    layers.reduce((y, layer) => layer(y), x);
const conv = (config: Partial<Parameters<typeof tfl.layers.conv2d>[0]> = {}): Layer =>
  apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', ...config }));
/** Two branches of the input, merged by `merge`. */
const branches =
  (merge: tfl.layers.Layer): Layer =>
  (x) =>
    merge.apply([conv()(x), conv({ activation: 'relu' })(x)]) as tfl.SymbolicTensor;

const cases: SweepCase[] = [
  {
    name: 'Conv1D',
    input: [16, 3],
    noStem: true,
    body: apply(tfl.layers.conv1d({ filters: 4, kernelSize: 3 })),
  },
  // (padding 'causal' is not implemented by tfjs-layers on any backend.)
  {
    name: 'Conv1D strides 2 same, relu',
    input: [16, 3],
    noStem: true,
    body: apply(
      tfl.layers.conv1d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }),
    ),
  },
  { name: 'Conv2D 3×3 same', body: conv() },
  {
    name: 'Conv2D 3×3 strides 2 valid, no bias',
    body: conv({ strides: 2, padding: 'valid', useBias: false }),
  },
  { name: 'Conv2D 1×1 strides 2', body: conv({ kernelSize: 1, strides: 2 }) },
  {
    name: 'Conv2D 3×1 and 1×3, relu',
    body: chain(conv({ kernelSize: [3, 1], activation: 'relu' }), conv({ kernelSize: [1, 3] })),
  },
  { name: 'Conv2D 5×5 strides 2 same, 6 filters', body: conv({ kernelSize: 5, strides: 2, filters: 6 }) },
  {
    name: 'Conv2D channelsFirst',
    input: [3, 8, 8],
    noStem: true,
    body: chain(conv({ dataFormat: 'channelsFirst' }), apply(tfl.layers.permute({ dims: [2, 3, 1] }))),
  },
  {
    name: 'DepthwiseConv2D 3×3 same',
    body: apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same' })),
  },
  {
    name: 'DepthwiseConv2D strides 2 valid, multiplier 2, no bias',
    body: apply(
      tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, depthMultiplier: 2, useBias: false }),
    ),
  },
  // tfjs-layers' DepthwiseConv2D ignores dilationRate (it calls depthwiseConv2d with none): this trains undilated.
  {
    name: 'DepthwiseConv2D dilation 2',
    body: apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', dilationRate: 2 })),
  },
  {
    name: 'SeparableConv2D',
    body: apply(
      tfl.layers.separableConv2d({ filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }),
    ),
  },
  {
    name: 'SeparableConv2D strides 2, multiplier 2',
    body: apply(tfl.layers.separableConv2d({ filters: 6, kernelSize: 3, strides: 2, depthMultiplier: 2 })),
  },
  {
    name: 'Conv2DTranspose',
    body: apply(tfl.layers.conv2dTranspose({ filters: 4, kernelSize: 3, padding: 'same' })),
  },
  {
    name: 'Conv2DTranspose strides 2',
    body: apply(tfl.layers.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' })),
  },
  {
    name: 'Conv2DTranspose strides 2 valid',
    body: apply(tfl.layers.conv2dTranspose({ filters: 4, kernelSize: 2, strides: 2, padding: 'valid' })),
  },
  {
    name: 'Dense',
    body: chain(apply(tfl.layers.flatten()), apply(tfl.layers.dense({ units: 12, activation: 'relu' }))),
  },
  { name: 'Dense on NHWC (last axis)', body: apply(tfl.layers.dense({ units: 5 })) },
  // The stem has no bias: BatchNorm makes its gradient zero (rounding noise, no relative error to compare).
  { name: 'BatchNormalization', stemBias: false, body: apply(tfl.layers.batchNormalization()) },
  {
    // (scale: false fails in tfjs-layers' training call on every backend; checkTrainable reports it.)
    name: 'BatchNormalization after Dense',
    stemBias: false,
    body: chain(
      apply(tfl.layers.globalAveragePooling2d({})),
      apply(tfl.layers.dense({ units: 6, useBias: false })),
      apply(tfl.layers.batchNormalization()),
    ),
  },
  { name: 'ReLU', body: apply(tfl.layers.reLU()) },
  // maxValue below the activations' range, so the clipped side is exercised (6 would clip nothing here).
  { name: 'ReLU maxValue', body: apply(tfl.layers.reLU({ maxValue: 0.5 })) },
  {
    name: 'ReLU maxValue 6 (MobileNetV2)',
    body: chain(conv({ kernelInitializer: 'ones' }), apply(tfl.layers.reLU({ maxValue: 6 }))),
  },
  { name: 'Activation relu6', body: apply(tfl.layers.activation({ activation: 'relu6' })) },
  { name: 'Activation swish', body: apply(tfl.layers.activation({ activation: 'swish' })) },
  { name: 'Activation sigmoid', body: apply(tfl.layers.activation({ activation: 'sigmoid' })) },
  { name: 'Activation tanh', body: apply(tfl.layers.activation({ activation: 'tanh' })) },
  { name: 'Activation softmax', body: apply(tfl.layers.activation({ activation: 'softmax' })) },
  { name: 'MaxPooling2D', body: apply(tfl.layers.maxPooling2d({ poolSize: 2 })) },
  {
    name: 'MaxPooling2D 3×3 strides 2 same',
    body: apply(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' })),
  },
  { name: 'AveragePooling2D', body: apply(tfl.layers.averagePooling2d({ poolSize: 2 })) },
  {
    name: 'AveragePooling2D 3×3 strides 1 same',
    body: apply(tfl.layers.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' })),
  },
  { name: 'GlobalAveragePooling2D', body: apply(tfl.layers.globalAveragePooling2d({})) },
  {
    name: 'ZeroPadding2D',
    body: apply(
      tfl.layers.zeroPadding2d({
        padding: [
          [1, 2],
          [0, 1],
        ],
      }),
    ),
  },
  { name: 'UpSampling2D', cpuPerImage: true, body: apply(tfl.layers.upSampling2d({ size: [2, 2] })) },
  {
    name: 'UpSampling2D bilinear',
    body: apply(tfl.layers.upSampling2d({ size: [2, 2], interpolation: 'bilinear' })),
  },
  { name: 'Dropout', body: apply(tfl.layers.dropout({ rate: 0.3, seed: 7 })) },
  { name: 'Flatten', body: apply(tfl.layers.flatten()) },
  { name: 'Add', body: branches(tfl.layers.add()) },
  { name: 'Concatenate', body: branches(tfl.layers.concatenate()) },
  { name: 'Multiply', body: branches(tfl.layers.multiply()) },
];

const batchSize = 4;
const numClasses = 10;

/** input → [3×3 conv stem →] body → flatten → dense(10) (→ softmax for the softmax case). */
function sweepModel(c: SweepCase): tfl.LayersModel {
  const input = tfl.input({ shape: c.input ?? [8, 8, 3] });
  const stem = c.noStem ? input : conv({ filters: 4, useBias: c.stemBias ?? true })(input);
  let x = c.body(stem);
  if (x.shape.length > 2) x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: numClasses }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

const images = (size: number) => seededValues(batchSize * size, 11);
const labels = Int32Array.from({ length: batchSize }, (_, i) => (3 * i + 1) % numClasses);

async function step(model: tfl.LayersModel, size: number): Promise<GradientResult> {
  const computer = await createGradientComputer({ model, workers: 0, numClasses });
  const result = await computer.compute({ images: images(size), count: batchSize, labels });
  await computer.close();
  return result;
}

/** The batch's loss and gradients as the mean of one-image steps (for models without batch statistics). */
async function stepPerImage(model: tfl.LayersModel, size: number): Promise<GradientResult> {
  const computer = await createGradientComputer({ model, workers: 0, numClasses });
  const all = images(size);
  const results: GradientResult[] = [];
  for (let i = 0; i < batchSize; i++) {
    const image = { images: all.slice(i * size, (i + 1) * size), count: 1, labels: labels.slice(i, i + 1) };
    results.push(await computer.compute(image));
  }
  await computer.close();
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  return {
    loss: mean(results.map((r) => r.loss)),
    correct: 0,
    gradients: (results[0] as GradientResult).gradients.map((g, w) =>
      g.map((_, k) => mean(results.map((r) => r.gradients[w]?.[k] as number))),
    ),
  };
}

describe('one train step on wasm equals the cpu backend', () => {
  it.each(cases)('$name', async (c) => {
    await initEngine({ backend: 'cpu' });
    const model = sweepModel(c);
    const size = (c.input ?? [8, 8, 3]).reduce((a, b) => a * b, 1);
    try {
      const cpu = await (c.cpuPerImage ? stepPerImage : step)(model, size);
      await initEngine({ backend: 'wasm' });
      const wasm = await step(model, size);
      expect(Math.abs(wasm.loss - cpu.loss) / Math.abs(cpu.loss)).toBeLessThan(1e-4);
      expect(wasm.gradients).toHaveLength(model.trainableWeights.length);
      wasm.gradients.forEach((gradient, i) => {
        const name = model.trainableWeights[i]?.originalName;
        expect(relativeError(gradient, cpu.gradients[i] as Float32Array), name).toBeLessThan(1e-4);
      });
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await step(model, size);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });
});

describe('a layer the engine cannot train', () => {
  it('fails in createGradientComputer, naming the layer, when tfjs has no gradient for it (dilated Conv2D)', async () => {
    await initEngine({ backend: 'wasm' });
    const model = sweepModel({ name: 'dilated', body: conv({ dilationRate: 2 }) });
    const dilated = model.layers[2]?.name;
    const before = tf.memory().numTensors;
    const create = createGradientComputer({ model, workers: 0, numClasses });
    await expect(create).rejects.toThrow(UntrainableLayerError);
    await expect(createGradientComputer({ model, workers: 0, numClasses })).rejects.toMatchObject({
      layer: dilated,
      className: 'Conv2D',
      backend: 'wasm',
      kernel: undefined,
      message: expect.stringMatching(/dilation/),
    });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('fails in createGradientComputer naming the layer and the kernel the backend lacks', async () => {
    await initEngine({ backend: 'wasm' });
    // Embedding's gradient needs UnsortedSegmentSum, which tfjs-backend-wasm does not have.
    const input = tfl.input({ shape: [4] });
    const embedded = tfl.layers.embedding({ inputDim: 5, outputDim: 3, name: 'lookup' }).apply(input);
    const flat = tfl.layers.flatten().apply(embedded) as tfl.SymbolicTensor;
    const output = tfl.layers.dense({ units: numClasses }).apply(flat) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: output });
    const movingBefore = tf.memory().numTensors;
    await expect(createGradientComputer({ model, workers: 0, numClasses })).rejects.toMatchObject({
      name: 'UntrainableLayerError',
      layer: 'lookup',
      className: 'Embedding',
      kernel: 'UnsortedSegmentSum',
      message: expect.stringMatching(/'lookup' \(Embedding\).*UnsortedSegmentSum/),
    });
    expect(tf.memory().numTensors).toBe(movingBefore);
    model.dispose();
  });

  it('leaves BatchNorm moving statistics as they were', async () => {
    await initEngine({ backend: 'wasm' });
    const model = sweepModel({ name: 'bn', body: apply(tfl.layers.batchNormalization()) });
    const before = model.getWeights().map((w) => Array.from(w.dataSync()));
    checkTrainable(model);
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(before);
    model.dispose();
  });
});
