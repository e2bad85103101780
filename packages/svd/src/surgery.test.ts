import { applyStrategy } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { svdStrategy } from './strategy.js';

beforeAll(async () => {
  await initEngine();
});

it.each(['weight', 'spatial'] as const)(
  'compresses every convolution of a ResNet-20 through surgery, and in weight mode its Dense head (%s)',
  (mode) => {
    const model = createCifarResNet({ arch: 'resnet20' });
    const { model: compressed, report } = applyStrategy(model, svdStrategy, {
      layers: '**',
      options: { mode, ratio: 0.5 },
    });
    expect(report).toHaveLength(mode === 'weight' ? 20 : 19);
    expect(report.some((r) => r.layer === 'head.fc')).toBe(mode === 'weight');
    for (const { before, after, replacements, info } of report) {
      expect(after.params).toBeLessThanOrEqual(0.5 * before.params);
      expect(replacements).toHaveLength(2);
      expect(info?.relativeError).toBeGreaterThan(0);
    }
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 1);
    const y = compressed.predict(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 10]);
    expect(Number.isFinite(y.sum().dataSync()[0])).toBe(true);
    tf.dispose([x, y]);
    model.dispose();
    compressed.dispose();
  },
);

it('reports the cost of an energy-chosen rank through surgery', () => {
  const model = createCifarResNet({ arch: 'resnet20' });
  const { model: compressed, report } = applyStrategy(model, svdStrategy, {
    layers: ['stage3.block1.conv2'],
    options: { mode: 'weight', energy: 0.9 },
  });
  const [entry] = report;
  expect(entry?.after.params).toBe(entry?.info?.params);
  expect(entry?.after.params).toBeLessThan(entry?.before.params ?? 0);
  model.dispose();
  compressed.dispose();
});
