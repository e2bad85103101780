import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import { model as functionalModel, input, type LayersModel } from '@tensorflow/tfjs-layers';
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
