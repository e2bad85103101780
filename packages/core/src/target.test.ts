import { initEngine } from '@decompose/engine';
import { beforeAll, expect, it } from 'vitest';
import { UnknownLayerError } from './errors.js';
import { describeLayer, listTargets } from './target.js';
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
  expect(describeLayer(model, 'head')).toMatchObject({
    className: 'Dense',
    conv: null,
    kernel: null,
    bias: null,
  });
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
