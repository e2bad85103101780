import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { costTable, exportStock, isStockLayerClass, maxOutputDifference } from '@decompose/core';
import { fileSystem, initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import { input, type LayersModel, layers, model, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BasisConv2D } from './basis-conv2d.js';
import { BasisDense } from './basis-dense.js';
import { convertToBasis } from './schedule.js';

const run = promisify(execFile);

/** Gives every BatchNormalization random statistics, gamma and beta, so that folding them is a real test. */
function randomiseBatchNorm(net: LayersModel, seed: number): void {
  for (const layer of net.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const shapes = layer.getWeights().map((w) => w.shape);
    const values = shapes.map((shape, i) =>
      tf.tidy(() => {
        const u = tf.randomUniform(shape, 0, 1, 'float32', seed++);
        // gamma, beta, moving mean, moving variance (strictly positive)
        return [tf.add(0.5, u), tf.sub(u, 0.5), tf.mul(tf.sub(u, 0.5), 0.2), tf.add(0.5, u)][i]!;
      }),
    );
    layer.setWeights(values);
    tf.dispose(values);
  }
}

/** Σ m² (params) and Σ m²·H·W (MACs) over the layers lowered to a pair: the identity block `[I_m | ·]` stored. */
function identityBlocks(compressed: LayersModel): { params: number; forwardMacs: number } {
  let params = 0;
  let forwardMacs = 0;
  for (const layer of compressed.layers) {
    if (!(layer instanceof BasisConv2D) || layer.form === 'full') continue;
    const [, h, w] = layer.outputShape as number[];
    params += layer.basisSize ** 2;
    forwardMacs += layer.basisSize ** 2 * h! * w!;
  }
  return { params, forwardMacs };
}

describe('exportStock of a basis-compressed ResNet-20', () => {
  let dense: LayersModel;
  let compressed: LayersModel;
  let images: tf.Tensor4D;
  let work: string;
  beforeAll(async () => {
    await initEngine({ backend: 'cpu' });
    dense = createCifarResNet({ arch: 'resnet20' });
    randomiseBatchNorm(dense, 7);
    compressed = convertToBasis(dense, { layers: 'stage*.**', options: { ratio: 0.5 } }).model;
    images = tf.randomNormal([4, 32, 32, 3], 0, 1, 'float32', 3);
    work = await mkdtemp(path.join(tmpdir(), 'basis-export-'));
  });
  afterAll(async () => {
    dense.dispose();
    compressed.dispose();
    images.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it('lowers every BasisConv2D to a k×k and a 1×1 stock Conv2D with the same outputs and the saving', () => {
    const basisLayers = compressed.layers.filter((l) => l instanceof BasisConv2D);
    expect(basisLayers).toHaveLength(18);
    const { model: stock, lowered, foldedBatchNorm } = exportStock(compressed);
    try {
      expect(foldedBatchNorm).toBe(false);
      expect(stock.layers.every((l) => isStockLayerClass(l.getClassName()))).toBe(true);
      expect(lowered.map((l) => l.layer)).toEqual(basisLayers.map((l) => l.name));
      for (const { layer, className, replacements } of lowered) {
        expect(className).toBe('BasisConv2D');
        expect(replacements).toEqual([`${layer}_basis`, `${layer}_combine`]);
        const combine = stock.getLayer(`${layer}_combine`).getConfig();
        expect(combine.kernelSize).toEqual([1, 1]);
        expect(combine.filters).toBe((compressed.getLayer(layer) as BasisConv2D).filters);
      }
      // Every other layer keeps its name.
      const names = new Set(stock.layers.map((l) => l.name));
      for (const l of compressed.layers)
        if (!(l instanceof BasisConv2D)) expect(names.has(l.name)).toBe(true);

      expect(maxOutputDifference(compressed, stock, images)).toBeLessThanOrEqual(1e-5);

      const [original, before, after] = [dense, compressed, stock].map((m) => costTable(m).total) as [
        ReturnType<typeof costTable>['total'],
        ReturnType<typeof costTable>['total'],
        ReturnType<typeof costTable>['total'],
      ];
      // The stock 1×1 conv stores [I_m | A'ᵀ]: m² more parameters and m²·H·W more MACs per layer than BasisConv2D.
      const identity = identityBlocks(compressed);
      expect(after.params).toBe(before.params + identity.params);
      expect(after.forwardMacs).toBe(before.forwardMacs + identity.forwardMacs);
      expect(after.params).toBeLessThan(original.params);
      expect(after.forwardMacs).toBeLessThan(original.forwardMacs);
    } finally {
      stock.dispose();
    }
  });

  it('folds BatchNorm on request, and leaks no tensor', () => {
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      const { model: stock, foldedBatchNorm } = exportStock(compressed, { foldBatchNorm: true });
      expect(foldedBatchNorm).toBe(true);
      expect(stock.layers.some((l) => l.getClassName() === 'BatchNormalization')).toBe(false);
      expect(maxOutputDifference(compressed, stock, images)).toBeLessThanOrEqual(1e-4);
      stock.dispose();
      expect(tf.memory().numTensors).toBe(tensors);
    }
  });

  it('loads with the stock loader in a fresh Node process that imports only tfjs-core, -layers and -backend-cpu', async () => {
    const { model: stock } = exportStock(compressed);
    const dir = path.join(work, 'stock');
    const ours = tf.tidy(() => stock.predict(images) as tf.Tensor);
    try {
      await stock.save(fileSystem(dir));
      const inputFile = path.join(work, 'input.json');
      await writeFile(
        inputFile,
        JSON.stringify({ shape: images.shape, values: Array.from(images.dataSync()) }),
      );
      // The engine depends on all three stock packages: resolve them from its node_modules.
      const engineDir = fileURLToPath(new URL('../node_modules/@decompose/engine/', import.meta.url));
      const script = path.join(work, 'load-stock.mjs');
      await writeFile(script, LOAD_STOCK_SCRIPT);
      const { stdout } = await run(process.execPath, [script, engineDir, dir, inputFile], {
        maxBuffer: 1 << 24,
      });
      const child = JSON.parse(stdout) as { backend: string; shape: number[]; values: number[] };
      expect(child.backend).toBe('cpu');
      expect(child.shape).toEqual(ours.shape);
      const expected = ours.dataSync();
      const worst = child.values.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i]!)), 0);
      expect(worst).toBeLessThanOrEqual(1e-5);
      // And against the basis model itself.
      const basis = tf.tidy(() => compressed.predict(images) as tf.Tensor).dataSync();
      expect(child.values.reduce((m, v, i) => Math.max(m, Math.abs(v - basis[i]!)), 0)).toBeLessThanOrEqual(
        1e-5,
      );
    } finally {
      ours.dispose();
      stock.dispose();
    }
  });
});

/**
 * Loads a model folder with nothing but stock tfjs (no tfjs-node, no file:// handler: the files are read with
 * node:fs and handed to tf.io.fromMemory) and prints its outputs on an input as JSON.
 */
const LOAD_STOCK_SCRIPT = `
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
const [engineDir, modelDir, inputFile] = process.argv.slice(2);
const require = createRequire(path.join(engineDir, 'package.json'));
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfl = require('@tensorflow/tfjs-layers');
await tf.setBackend('cpu');
const json = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
const bytes = readFileSync(path.join(modelDir, json.weightsManifest[0].paths[0]));
const weightSpecs = json.weightsManifest.flatMap((group) => group.weights);
const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
const model = await tfl.loadLayersModel(
  tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }),
);
const input = JSON.parse(readFileSync(inputFile, 'utf8'));
const y = model.predict(tf.tensor(input.values, input.shape));
process.stdout.write(JSON.stringify({ backend: tf.getBackend(), shape: y.shape, values: Array.from(y.dataSync()) }));
`;

describe('lowerToStock of single layers', () => {
  beforeAll(() => initEngine({ backend: 'cpu' }));

  function oneLayer(layer: BasisConv2D, channels: number): LayersModel {
    const x = input({ shape: [8, 8, channels], name: 'x' });
    const y = layers.globalAveragePooling2d({ name: 'pool' }).apply(layer.apply(x));
    return model({ inputs: x, outputs: y as SymbolicTensor });
  }

  it.each([
    {
      what: 'shrunk with an output order, bias, relu, stride 2',
      args: { form: 'shrunk', outputOrder: [5, 0, 4, 1, 3, 2], activation: 'relu', strides: 2 },
      classes: ['Conv2D', 'Conv2D'],
    },
    {
      what: 'full form, elu, dilation 2',
      args: { form: 'full', activation: 'elu', dilationRate: 2, useBias: false },
      classes: ['Conv2D', 'Conv2D'],
    },
    { what: 'm = C_out in identity order (no combination)', args: { basisSize: 6 }, classes: ['Conv2D'] },
  ] as const)('$what', ({ args, classes }) => {
    const x = tf.randomNormal([2, 8, 8, 4], 0, 1, 'float32', 5);
    const layer = new BasisConv2D({
      name: 'conv',
      filters: 6,
      basisSize: 3,
      kernelSize: 3,
      padding: 'same',
      seed: 2,
      ...args,
    });
    const net = oneLayer(layer, 4);
    // A non-zero bias, so that carrying it over is tested.
    if (layer.useBias) {
      const bias = tf.linspace(-1, 1, 6);
      layer.setWeights([...layer.getWeights().slice(0, -1), bias]);
      bias.dispose();
    }
    const { model: stock, lowered } = exportStock(net);
    expect(stock.layers.filter((l) => l.name.startsWith('conv')).map((l) => l.getClassName())).toEqual(
      classes,
    );
    expect(lowered[0]!.replacements).toHaveLength(classes.length);
    expect(maxOutputDifference(net, stock, x)).toBeLessThanOrEqual(1e-5);
    stock.dispose();
    net.dispose();
    x.dispose();
  });

  it('lowers to one dense Conv2D where the pair costs more than it (a 3-channel 1×1 layer)', () => {
    const layer = new BasisConv2D({ name: 'proj', filters: 8, basisSize: 6, kernelSize: 1, seed: 1 });
    const net = oneLayer(layer, 3);
    const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 1);
    const { model: stock, lowered } = exportStock(net);
    expect(lowered[0]!.replacements).toEqual(['proj']);
    expect(stock.getLayer('proj').getConfig().filters).toBe(8);
    expect(maxOutputDifference(net, stock, x)).toBeLessThanOrEqual(1e-5);
    stock.dispose();
    net.dispose();
    x.dispose();
  });
});

describe('exportStock of basis Dense layers', () => {
  beforeAll(async () => {
    await initEngine({ backend: 'cpu' });
  });

  it.each([
    { what: 'a factored head (m ≪ units)', ratio: 0.25, replacements: ['head_basis', 'head_combine'] },
    { what: 'a folded head (the pair costs more)', ratio: 0.9, replacements: ['head'] },
  ])('lowers $what to stock Dense layers with the same outputs', ({ ratio, replacements }) => {
    const x = input({ shape: [48] });
    const hidden = layers.dense({ name: 'hidden', units: 64, activation: 'relu' }).apply(x) as SymbolicTensor;
    const logits = layers
      .dense({ name: 'head', units: 40, activation: 'softmax' })
      .apply(hidden) as SymbolicTensor;
    const net = model({ inputs: x, outputs: logits });
    const compressed = convertToBasis(net, { layers: ['head'], options: { ratio } }).model;
    expect(compressed.getLayer('head')).toBeInstanceOf(BasisDense);
    const features = tf.randomNormal([5, 48], 0, 1, 'float32', 11);
    // The first call builds the layer's cached mixing constants, which it owns.
    tf.dispose(compressed.predict(features));
    const tensors = tf.memory().numTensors;
    const { model: stock, lowered } = exportStock(compressed);
    try {
      expect(lowered).toEqual([{ layer: 'head', className: 'BasisDense', replacements }]);
      expect(stock.layers.every((l) => isStockLayerClass(l.getClassName()))).toBe(true);
      expect(maxOutputDifference(compressed, stock, features)).toBeLessThanOrEqual(1e-5);
    } finally {
      stock.dispose();
    }
    expect(tf.memory().numTensors).toBe(tensors);
    features.dispose();
    compressed.dispose();
    net.dispose();
  });
});
