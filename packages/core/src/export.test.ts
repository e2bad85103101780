import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { input, type LayersModel, layers, model, type SymbolicTensor } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidLoweringError, UnloweredLayerError } from './errors.js';
import { exportStock, isStockLayerClass, type LayerLowering, maxOutputDifference } from './export.js';
import type { Layer } from './strategy.js';
import { isNestedModel } from './target.js';
import { PlainScale, SelfCostedScale } from './test/custom-layers.js';
import { identityStrategy } from './test/identity-strategy.js';

/** image → conv → custom channel scale → BatchNorm → relu → pool → dense. */
function scaledModel(scale: Layer = new PlainScale({ name: 'scale' })): LayersModel {
  const x = input({ shape: [8, 8, 3], name: 'image' });
  let y = layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same' }).apply(x);
  y = scale.apply(y);
  y = layers.conv2d({ name: 'conv2', filters: 4, kernelSize: 1 }).apply(y);
  y = layers.batchNormalization({ name: 'bn' }).apply(y);
  y = layers.activation({ name: 'relu', activation: 'relu' }).apply(y);
  y = layers.globalAveragePooling2d({ name: 'pool' }).apply(y);
  y = layers.dense({ name: 'fc', units: 5 }).apply(y);
  const net = model({ inputs: x, outputs: y as SymbolicTensor, name: 'scaled' });
  // Non-trivial scale and statistics.
  for (const layer of [scale, net.getLayer('bn')]) {
    const values = layer.getWeights().map((w, i) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', i));
    layer.setWeights(values);
    tf.dispose(values);
  }
  return net;
}

/** A channel scale as a stock 1×1 depthwise convolution with the scales as its kernel. */
const scaleLowering: LayerLowering = (layer) => ({
  layers: [layers.depthwiseConv2d({ name: `${layer.name}_depthwise`, kernelSize: 1, useBias: false })],
  weights: [[tf.tidy(() => tf.reshape(layer.getWeights()[0]!, [1, 1, -1, 1]))]],
});

describe('exportStock', () => {
  const image = () => tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 4);
  beforeAll(() => initEngine({ backend: 'cpu' }));

  it('knows stock classes from custom ones', () => {
    expect(isStockLayerClass('Conv2D')).toBe(true);
    expect(isStockLayerClass('BatchNormalization')).toBe(true);
    expect(isStockLayerClass(PlainScale.className)).toBe(false);
  });

  it('lowers a custom layer by a lowering given by class name, keeping every other name', () => {
    const net = scaledModel();
    const x = image();
    const tensors = tf.memory().numTensors;
    const { model: stock, lowered } = exportStock(net, { lowerings: { TestPlainScale: scaleLowering } });
    expect(lowered).toEqual([
      { layer: 'scale', className: 'TestPlainScale', replacements: ['scale_depthwise'] },
    ]);
    expect(stock.layers.map((l) => l.name)).toEqual(
      net.layers.map((l) => (l.name === 'scale' ? 'scale_depthwise' : l.name)),
    );
    expect(stock.name).toBe('scaled');
    expect(maxOutputDifference(net, stock, x)).toBeLessThanOrEqual(1e-6);
    stock.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
    net.dispose();
    x.dispose();
  });

  it("takes a strategy's lowerings, and folds BatchNorm on request", () => {
    const net = scaledModel();
    const x = image();
    const strategies = [{ ...identityStrategy, lowerings: { TestPlainScale: scaleLowering } }];
    const { model: stock, foldedBatchNorm } = exportStock(net, { strategies, foldBatchNorm: true });
    expect(foldedBatchNorm).toBe(true);
    expect(stock.layers.map((l) => l.getClassName())).not.toContain('BatchNormalization');
    expect(stock.layers.map((l) => l.name)).not.toContain('relu');
    expect(stock.getLayer('conv2').getConfig().activation).toBe('relu');
    expect(maxOutputDifference(net, stock, x)).toBeLessThanOrEqual(1e-5);
    stock.dispose();
    net.dispose();
    x.dispose();
  });

  it('passes a stock-only model through as a copy', () => {
    const x = input({ shape: [8, 8, 3] });
    const y = layers.conv2d({ name: 'c', filters: 2, kernelSize: 3 }).apply(x) as SymbolicTensor;
    const net = model({ inputs: x, outputs: y });
    const { model: stock, lowered } = exportStock(net);
    expect(lowered).toEqual([]);
    expect(stock).not.toBe(net);
    expect(stock.layers.map((l) => l.getClassName())).toEqual(net.layers.map((l) => l.getClassName()));
    const images = image();
    expect(maxOutputDifference(net, stock, images)).toBe(0);
    tf.dispose([images]);
    stock.dispose();
    net.dispose();
  });

  it('refuses a custom layer with no lowering, naming the layer and its class', () => {
    const net = scaledModel(new SelfCostedScale({ name: 'selfScale' }));
    expect(() => exportStock(net)).toThrow(UnloweredLayerError);
    expect(() => exportStock(net)).toThrow(
      /Layer 'selfScale' is a TestSelfCostedScale, a custom layer class/,
    );
    net.dispose();
  });

  it.each([
    {
      problem: 'a custom layer among the replacements',
      lowering: ((layer) => ({
        layers: [new PlainScale({ name: `${layer.name}_again` })],
        weights: [],
      })) as LayerLowering,
      error: /scale_again' is a TestPlainScale, not stock/,
    },
    {
      problem: 'a replacement name in use',
      lowering: (() => ({ layers: [layers.reLU({ name: 'conv' })], weights: [] })) as LayerLowering,
      error: /layer name 'conv' is already used/,
    },
    {
      problem: 'the wrong output shape',
      lowering: ((layer) => ({
        layers: [layers.conv2d({ name: `${layer.name}_c`, filters: 3, kernelSize: 1 })],
        weights: [],
      })) as LayerLowering,
      error: /output shape \[\[null,8,8,3\]\] differs from the layer's \[null,8,8,4\]/,
    },
  ])('refuses a lowering with $problem, leaking nothing', ({ lowering, error }) => {
    const net = scaledModel();
    const tensors = tf.memory().numTensors;
    const attempt = () => exportStock(net, { lowerings: { TestPlainScale: lowering } });
    expect(attempt).toThrow(InvalidLoweringError);
    expect(attempt).toThrow(error);
    expect(tf.memory().numTensors).toBe(tensors);
    net.dispose();
  });
});

describe('exportStock of nested sub-models', () => {
  beforeAll(() => initEngine({ backend: 'cpu' }));

  it('lowers a custom layer inside a nested sub-model, naming it by path', () => {
    const scale = new PlainScale({ name: 'scale' });
    const inner = input({ shape: [8, 8, 3], name: 'backbone_input' });
    const conv = layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same' });
    const sub = model({
      inputs: inner,
      outputs: scale.apply(conv.apply(inner)) as SymbolicTensor,
      name: 'backbone',
    });
    const values = scale.getWeights().map((w) => tf.randomUniform(w.shape, 0.5, 1.5, 'float32', 1));
    scale.setWeights(values);
    tf.dispose(values);
    const x = input({ shape: [8, 8, 3], name: 'image' });
    const pooled = layers.globalAveragePooling2d({ name: 'pool' }).apply(sub.apply(x)) as SymbolicTensor;
    const net = model({ inputs: x, outputs: pooled, name: 'nested' });
    const images = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 4);
    const { model: stock, lowered } = exportStock(net, { lowerings: { TestPlainScale: scaleLowering } });
    expect(lowered).toEqual([
      { layer: 'backbone/scale', className: 'TestPlainScale', replacements: ['backbone/scale_depthwise'] },
    ]);
    const classes = (m: LayersModel): string[] =>
      m.layers.flatMap((l) => (isNestedModel(l) ? classes(l) : [l.getClassName()]));
    expect(classes(stock).every((c) => isStockLayerClass(c))).toBe(true);
    expect(maxOutputDifference(net, stock, images)).toBeLessThanOrEqual(1e-6);
    tf.dispose(images);
    stock.dispose();
    net.dispose();
  });
});
