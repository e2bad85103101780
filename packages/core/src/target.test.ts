import { initEngine } from '@decompose/engine';
import { model as functionalModel, input, layers } from '@tensorflow/tfjs-layers';
import { beforeAll, expect, it } from 'vitest';
import { convCost } from './cost.js';
import { UnknownLayerError } from './errors.js';
import { describeLayer, listTargets, targetShape, unsupportedReason } from './target.js';
import { smallResidualModel } from './test/models.js';

beforeAll(async () => {
  await initEngine();
});

it('describes a convolution with its geometry in the model, weights and activation', () => {
  const model = smallResidualModel();
  const conv1 = describeLayer(model, 'block.conv1');
  expect(conv1).toMatchObject({ name: 'block.conv1', className: 'Conv2D', activation: 'relu' });
  expect(conv1.layer).toBe(model.getLayer('block.conv1'));
  expect(conv1.kernel?.shape).toEqual([3, 3, 8, 8]);
  expect(conv1.bias?.shape).toEqual([8]);
  expect(describeLayer(model, model.getLayer('down.conv')).conv).toEqual({
    kernelSize: [3, 3],
    inChannels: 8,
    outChannels: 16,
    strides: [2, 2],
    dilation: [1, 1],
    padding: 'same',
    useBias: false,
    inputSize: [8, 8],
    outputSize: [4, 4],
  });
  expect(describeLayer(model, 'down.conv').bias).toBeNull();
  const head = describeLayer(model, 'head');
  expect(head).toMatchObject({
    className: 'Dense',
    conv: null,
    kernel: null,
    dense: { inFeatures: 16, units: 10, useBias: true, positions: 1 },
    activation: 'linear',
  });
  expect(head.denseKernel?.shape).toEqual([16, 10]);
  expect(head.bias?.shape).toEqual([10]);
  expect(targetShape(head)).toEqual({
    kernelSize: [1, 1],
    inChannels: 16,
    outChannels: 10,
    strides: [1, 1],
    dilation: [1, 1],
    padding: 'valid',
    useBias: true,
    inputSize: [1, 1],
    outputSize: [1, 1],
  });
  expect(convCost(targetShape(head)!)).toEqual({ params: 170, forwardMacs: 160, backwardMacs: 320 });
  expect(unsupportedReason(head)).toBeNull();
  const pool = describeLayer(model, 'pool');
  expect(pool).toMatchObject({ dense: null, denseKernel: null, kernel: null });
  expect(unsupportedReason(pool)).toMatch(
    /GlobalAveragePooling2D, not a layer surgery rewrites \(a channels-last Conv2D, Conv1D or SeparableConv2D, or a Dense\)/,
  );
  expect(() => describeLayer(model, 'block.conv')).toThrow(UnknownLayerError);
  model.dispose();
});

it('lists every layer but the inputs', () => {
  const model = smallResidualModel();
  const targets = listTargets(model);
  expect(targets.map((t) => t.name)).toEqual(model.layers.slice(1).map((l) => l.name));
  expect(targets.filter((t) => t.conv !== null).map((t) => t.name)).toEqual([
    'stem.conv',
    'block.conv1',
    'block.conv2',
    'down.conv',
    'down.proj',
    'down.frozen',
  ]);
  model.dispose();
});

it('describes a Dense over a sequence with its positions, and a depthwise convolution with the real reason', () => {
  const x = input({ shape: [8, 8, 4] });
  const h = layers.depthwiseConv2d({ name: 'dw', kernelSize: 3 }).apply(x);
  const y = layers.dense({ name: 'mix', units: 6, useBias: false, activation: 'relu' }).apply(h);
  const model = functionalModel({ inputs: x, outputs: y as typeof x });
  const mix = describeLayer(model, 'mix');
  expect(mix.dense).toEqual({ inFeatures: 4, units: 6, useBias: false, positions: 36 });
  expect(mix).toMatchObject({ bias: null, activation: 'relu' });
  expect(convCost(targetShape(mix)!).forwardMacs).toBe(36 * 4 * 6);
  const dw = describeLayer(model, 'dw');
  expect(dw).toMatchObject({ conv: null, dense: null, kernel: null, bias: null });
  expect(targetShape(dw)).toBeNull();
  expect(unsupportedReason(dw)).toMatch(/^depthwise convolution: each output channel has its own single/);
  model.dispose();
});
