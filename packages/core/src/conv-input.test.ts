// Convolutions surgery used to skip with a misleading reason: channels-first ones, and those over an input of
// unknown spatial size (a fully convolutional model).
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { initializers, type LayersModel, layers, sequential } from '@tensorflow/tfjs-layers';
import { beforeAll, expect, it } from 'vitest';
import { convCost } from './cost.js';
import { costTable } from './cost-table.js';
import { UnsupportedLayerError } from './errors.js';
import { applyStrategy } from './surgery.js';
import { describeLayer } from './target.js';
import { identityStrategy } from './test/identity-strategy.js';
import { relativeDifference } from './testing.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

/** conv (3×3, stride 2) → conv (3×3) → global pooling, on `inputShape`, in `dataFormat`. */
function fullyConvolutional(
  inputShape: (number | null)[],
  dataFormat: 'channelsLast' | 'channelsFirst' = 'channelsLast',
): LayersModel {
  return sequential({
    layers: [
      layers.conv2d({
        name: 'conv1',
        inputShape,
        dataFormat,
        filters: 6,
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        kernelInitializer: initializers.glorotUniform({ seed: 1 }),
      }),
      layers.conv2d({
        name: 'conv2',
        dataFormat,
        filters: 4,
        kernelSize: 3,
        kernelInitializer: initializers.glorotUniform({ seed: 2 }),
      }),
      layers.globalAveragePooling2d({ name: 'pool', dataFormat }),
    ],
  });
}

it('refuses a channelsFirst convolution with the real reason and the fix', () => {
  const model = fullyConvolutional([3, 8, 8], 'channelsFirst');
  const { model: rewritten, report, skipped } = applyStrategy(model, identityStrategy);
  expect(report).toEqual([]);
  expect(skipped.map((s) => s.layer)).toEqual(['conv1', 'conv2']);
  expect(skipped[0]!.reason).toMatch(/^channelsFirst convolution: .*convert the model to channelsLast/);
  expect(() => applyStrategy(model, identityStrategy, { layers: 'conv1' })).toThrow(UnsupportedLayerError);
  expect(() => applyStrategy(model, identityStrategy, { layers: 'conv1' })).toThrow(/channelsFirst/);
  rewritten.dispose();
  model.dispose();
});

it('rewrites convolutions over an input of unknown spatial size, costing them per output pixel', () => {
  const model = fullyConvolutional([null, null, 3]);
  const shape = describeLayer(model, 'conv1').conv;
  expect(shape).toMatchObject({ inputSize: [2, 2], outputSize: [1, 1], perOutputPixel: true, inChannels: 3 });
  const once = () => {
    const { model: rewritten, report, skipped } = applyStrategy(model, identityStrategy);
    expect(skipped).toEqual([]);
    expect(report.map((r) => r.layer)).toEqual(['conv1', 'conv2']);
    expect(report[0]!.before).toEqual(convCost(shape!));
    expect(report[0]!.before.forwardMacs).toBe(9 * 3 * 6);
    expect(report[0]!.notes).toEqual([expect.stringMatching(/MACs per output pixel/)]);
    for (const size of [9, 12]) {
      const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', size);
      const difference = tf.tidy(() =>
        relativeDifference(rewritten.predict(x) as tf.Tensor, model.predict(x) as tf.Tensor),
      );
      expect(difference).toBeLessThan(1e-6);
      x.dispose();
    }
    rewritten.dispose();
  };
  once();
  const tensors = tf.memory().numTensors;
  once();
  expect(tf.memory().numTensors).toBe(tensors);
  // The cost table cannot count MACs per image there: the rows are uncosted, their parameters exact.
  const table = costTable(model);
  expect(table.uncosted).toEqual(['conv1', 'conv2']);
  expect(table.rows[0]).toMatchObject({ params: 9 * 3 * 6 + 6, forwardMacs: 0, source: 'unknown' });
  model.dispose();
});
