import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import { model as functionalModel, input, type LayersModel, layers } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costTable, registerLayerCost } from './cost-table.js';
import { PlainScale, SelfCostedScale } from './test/custom-layers.js';
import { identityStrategy } from './test/identity-strategy.js';
import { smallResidualModel } from './test/models.js';

beforeAll(async () => {
  await initEngine();
});

describe('costTable', () => {
  it('costs convolutions, batch norm and dense layers of the small model', () => {
    const model = smallResidualModel();
    const table = costTable(model);
    const row = (name: string) => table.rows.find((r) => r.name === name);
    expect(table.rows.map((r) => r.name)).toEqual([
      'stem.conv',
      'stem.bn',
      'block.conv1',
      'block.conv2',
      'down.conv',
      'down.proj',
      'down.frozen',
      'head',
    ]);
    expect(row('stem.conv')).toEqual({
      name: 'stem.conv',
      className: 'Conv2D',
      params: 216,
      trainableParams: 216,
      forwardMacs: 216 * 64,
      backwardMacs: 2 * 216 * 64,
      source: 'builtin',
    });
    expect(row('stem.bn')).toMatchObject({
      params: 32,
      trainableParams: 16,
      forwardMacs: 512,
      backwardMacs: 1024,
    });
    expect(row('down.conv')).toMatchObject({ params: 1152, forwardMacs: 1152 * 16 });
    expect(row('down.frozen')).toMatchObject({ params: 2304, trainableParams: 0 });
    expect(row('head')).toMatchObject({ params: 170, forwardMacs: 160, backwardMacs: 320 });
    const params = table.rows.reduce((n, r) => n + r.params, 0);
    expect(table.total.params).toBe(params);
    expect(table.total.params).toBe(model.countParams());
    expect(table.uncosted).toEqual([]);
    model.dispose();
  });

  it('costs custom layers through their own hook, a strategy, a registered function or an option, else lists them', () => {
    const x = input({ shape: [4, 4, 2] });
    const y = new PlainScale({ name: 'plain' }).apply(new SelfCostedScale({ name: 'self' }).apply(x));
    const model = functionalModel({ inputs: x, outputs: y as ReturnType<typeof input> });

    const before = costTable(model);
    expect(before.rows.find((r) => r.name === 'self')).toMatchObject({
      params: 2,
      forwardMacs: 32,
      backwardMacs: 96,
      source: 'layer',
    });
    expect(before.rows.find((r) => r.name === 'plain')).toMatchObject({
      params: 2,
      forwardMacs: 0,
      source: 'unknown',
    });
    expect(before.uncosted).toEqual(['plain']);

    registerLayerCost(PlainScale.className, () => ({ params: 2, forwardMacs: 5, backwardMacs: 6 }));
    expect(costTable(model).rows.find((r) => r.name === 'plain')).toMatchObject({
      forwardMacs: 5,
      source: 'registered',
    });
    const byStrategy = costTable(model, {
      strategies: [
        {
          ...identityStrategy,
          layerCosts: { [PlainScale.className]: () => ({ params: 2, forwardMacs: 9, backwardMacs: 9 }) },
        },
      ],
    });
    expect(byStrategy.rows.find((r) => r.name === 'plain')).toMatchObject({
      forwardMacs: 9,
      source: 'strategy',
    });
    const overridden = costTable(model, {
      layerCosts: { [SelfCostedScale.className]: () => ({ params: 2, forwardMacs: 7, backwardMacs: 8 }) },
    });
    expect(overridden.rows.find((r) => r.name === 'self')).toMatchObject({
      forwardMacs: 7,
      source: 'option',
    });
    expect(overridden.total).toEqual({ params: 4, trainableParams: 4, forwardMacs: 12, backwardMacs: 14 });
    model.dispose();
  });
});

describe('costTable on a MobileNetV2-style block', () => {
  /** 16×16×16 → 1×1 expand to 96 → 3×3 depthwise stride 2 → 1×1 project to 24 → depthwise ×2 → separable → head. */
  function mobileBlock(): LayersModel {
    const x = input({ shape: [16, 16, 16] });
    let h = layers.conv2d({ name: 'expand', filters: 96, kernelSize: 1, useBias: false }).apply(x);
    h = layers.batchNormalization({ name: 'expand.bn' }).apply(h);
    h = layers.reLU({ maxValue: 6 }).apply(h);
    h = layers
      .depthwiseConv2d({ name: 'dw', kernelSize: 3, strides: 2, padding: 'same', useBias: false })
      .apply(h);
    h = layers.conv2d({ name: 'project', filters: 24, kernelSize: 1, useBias: false }).apply(h);
    h = layers.depthwiseConv2d({ name: 'dw2', kernelSize: 3, depthMultiplier: 2, padding: 'same' }).apply(h);
    h = layers.separableConv2d({ name: 'sep', filters: 32, kernelSize: 3, padding: 'same' }).apply(h);
    h = layers.globalAveragePooling2d({}).apply(h);
    const y = layers.dense({ name: 'head', units: 10 }).apply(h) as ReturnType<typeof input>;
    return functionalModel({ inputs: x, outputs: y });
  }

  it('costs depthwise and separable convolutions: k²·C_in·multiplier MACs per output pixel, bias in params', () => {
    const model = mobileBlock();
    const table = costTable(model);
    const cost = (name: string) => {
      const row = table.rows.find((r) => r.name === name)!;
      return [row.params, row.forwardMacs, row.backwardMacs, row.source];
    };
    // Hand-computed: 16·96 weights at 16×16; 3·3·96 at 8×8; 96·24 at 8×8.
    expect(cost('expand')).toEqual([1536, 1536 * 256, 2 * 1536 * 256, 'builtin']);
    expect(cost('dw')).toEqual([864, 55296, 2 * 55296, 'builtin']);
    expect(cost('project')).toEqual([2304, 147456, 2 * 147456, 'builtin']);
    // Multiplier 2 on 24 channels: 3·3·24·2 = 432 weights + 48 biases, at 8×8.
    expect(cost('dw2')).toEqual([480, 432 * 64, 2 * 432 * 64, 'builtin']);
    // 48 channels: depthwise 3·3·48 = 432, pointwise 48·32 = 1536, 32 biases; (432 + 1536) MACs per pixel.
    expect(cost('sep')).toEqual([2000, 1968 * 64, 2 * 1968 * 64, 'builtin']);
    expect(cost('head')).toEqual([330, 320, 640, 'builtin']);
    expect(table.uncosted).toEqual([]);
    model.dispose();
  });
});

describe('costTable on ResNet-20', () => {
  let resnet20: LayersModel;
  beforeAll(() => {
    resnet20 = createCifarResNet({ arch: 'resnet20', shortcut: 'A' });
  });
  afterAll(() => resnet20.dispose());

  it('matches the published size: 0.27 M parameters, about 41 M multiply-adds per image', () => {
    const table = costTable(resnet20);
    expect(table.total.trainableParams).toBe(269_722);
    expect(table.total.params).toBe(resnet20.countParams());
    const convMacs = table.rows
      .filter((r) => r.className === 'Conv2D')
      .reduce((n, r) => n + r.forwardMacs, 0);
    expect(convMacs).toBe(40_550_400);
    expect(table.total.forwardMacs).toBeGreaterThan(40.5e6);
    expect(table.total.forwardMacs).toBeLessThan(41.5e6);
    expect(table.total.backwardMacs).toBeCloseTo(2 * table.total.forwardMacs, -3);
    expect(table.uncosted).toEqual([]);
  });
});
