import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { basisStrategy } from '@decompose/basis';
import type { ImageSet } from '@decompose/cifar10';
import { normalizeImageSet } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { localExecutor } from '@decompose/jobs';
import { scanSensitivity } from '@decompose/sensitivity';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScanRequestError } from './errors.js';
import { type ScanOnExecutorRequest, scanLayers, scanOnExecutor } from './scan.js';

/**
 * Two 3×3 convolutions: `wide` (8 filters) saves weights as a basis convolution at ratios 0.5 and 0.75, `narrow`
 * (2 filters) only at 0.5 (at 0.75, m = round(1.5) = 2 = C_out saves nothing).
 */
function twoConvModel(): tfl.LayersModel {
  const conv = (name: string, filters: number, seed: number) =>
    tfl.layers.conv2d({
      name,
      filters,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      kernelInitializer: tfl.initializers.glorotUniform({ seed }),
    });
  const input = tfl.input({ shape: [8, 8, 3], name: 'images' });
  const wide = conv('wide', 8, 1).apply(input);
  const narrow = conv('narrow', 2, 2).apply(wide);
  const flat = tfl.layers.flatten({ name: 'flatten' }).apply(narrow);
  const logits = tfl.layers.dense({
    name: 'logits',
    units: 4,
    kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
  });
  return tfl.model({ inputs: input, outputs: logits.apply(flat) as tfl.SymbolicTensor });
}

function noise(count: number): ImageSet {
  const images = new Uint8Array(count * 8 * 8 * 3);
  let state = 7;
  for (let i = 0; i < images.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    images[i] = state >>> 24;
  }
  return { images, labels: Uint8Array.from({ length: count }, (_, i) => i % 4), count, shape: [8, 8, 3] };
}

describe("scanOnExecutor with layerRatios 'supported'", () => {
  let dir: string;
  let model: tfl.LayersModel;
  let request: ScanOnExecutorRequest;
  beforeAll(async () => {
    await initEngine({ backend: 'cpu' });
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-scan-ratios-'));
    model = twoConvModel();
    request = {
      model,
      strategy: basisStrategy,
      strategySpecifier: 'basis',
      layers: ['wide', 'narrow'],
      layersField: '--layers',
      ratios: [0.5, 0.75],
      calibration: noise(12),
      seed: 0,
    };
  });
  afterAll(async () => {
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves out a layer refused at one ratio by default, and names the selection when none is left', () => {
    const field = '--layers';
    expect(scanLayers(model, basisStrategy, [0.5, 0.75], {}, ['wide', 'narrow'], field)).toEqual(['wide']);
    expect(scanLayers(model, basisStrategy, [0.5, 0.75], {}, ['wide', 'narrow'], field, 'supported')).toEqual(
      ['wide', 'narrow'],
    );
    expect(() => scanLayers(model, basisStrategy, [0.75], {}, ['narrow'], field, 'supported')).toThrow(
      ScanRequestError,
    );
  });

  it('scans each layer at the ratios it supports, as scanSensitivity of that layer does, and resumes from the cache', async () => {
    const executor = await localExecutor({ threads: 0 });
    const cacheFile = path.join(dir, 'scan.jsonl');
    const tensors = tf.memory().numTensors;
    try {
      const starts: { total: number; cached: number }[] = [];
      const table = await scanOnExecutor(
        executor,
        { ...request, layerRatios: 'supported', cacheFile },
        { onStart: ({ total, cached }) => starts.push({ total, cached }) },
      );
      expect(table.layers.map((l) => l.layer)).toEqual(['wide', 'narrow']);
      expect(table.entries.map((e) => `${e.layer}@${e.ratio}`)).toEqual([
        'wide@0.5',
        'wide@0.75',
        'narrow@0.5',
      ]);
      expect(table.ratios).toEqual([0.5, 0.75]);

      const images = tf.tensor4d(normalizeImageSet(request.calibration), [12, 8, 8, 3]);
      const alone = await scanSensitivity({
        model,
        strategy: basisStrategy,
        layers: ['narrow'],
        ratios: [0.5],
        calibration: { images, labels: request.calibration.labels },
        seed: 0,
      });
      images.dispose();
      expect(table.entries[2]?.metric.accuracy).toBe(alone.entries[0]?.metric.accuracy);
      expect(table.entries[2]?.metric.loss).toBeCloseTo(alone.entries[0]?.metric.loss ?? Number.NaN, 6);
      expect(table.baseline).toEqual(alone.baseline);

      const resumed = await scanOnExecutor(
        executor,
        { ...request, layerRatios: 'supported', cacheFile },
        { onStart: ({ total, cached }) => starts.push({ total, cached }) },
      );
      expect(starts).toEqual([
        { total: 3, cached: 0 },
        { total: 3, cached: 3 },
      ]);
      expect(resumed.entries).toEqual(table.entries);
      expect(resumed.layers).toEqual(table.layers);

      const everyRatio = await scanOnExecutor(executor, request);
      expect(everyRatio.entries.map((e) => `${e.layer}@${e.ratio}`)).toEqual(['wide@0.5', 'wide@0.75']);
    } finally {
      await executor.close();
    }
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
