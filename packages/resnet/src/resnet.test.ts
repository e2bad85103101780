import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CifarResNetOptions, createCifarResNet, listConvLayers } from './index.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

function trainableParams(model: tfl.LayersModel): number {
  return model.trainableWeights.reduce((sum, w) => sum + w.read().size, 0);
}

function withModel<T>(options: CifarResNetOptions, use: (model: tfl.LayersModel) => T): T {
  const model = createCifarResNet(options);
  try {
    return use(model);
  } finally {
    model.dispose();
  }
}

function batch(size: number, seed = 1): tf.Tensor4D {
  return tf.randomNormal([size, 32, 32, 3], 0, 1, 'float32', seed);
}

describe('createCifarResNet', () => {
  // Trainable parameters as counted for the reference PyTorch models (akamaster/pytorch_resnet_cifar10
  // for option A, kuangliu/pytorch-cifar for ResNet-18): conv and fc weights, fc bias, BN gamma and beta.
  it.each([
    ['resnet20', 269_722],
    ['resnet32', 464_154],
    ['resnet44', 658_586],
    ['resnet56', 853_018],
    ['resnet110', 1_727_962],
    ['resnet18', 11_173_962],
  ] as const)('%s has %i trainable parameters', (arch, expected) => {
    expect(withModel({ arch }, trainableParams)).toBe(expected);
  });

  it('names layers stably and lists the convs with their geometry', () => {
    withModel({ depth: 20 }, (model) => {
      const convs = listConvLayers(model);
      const blocks = [1, 2, 3].flatMap((s) => [1, 2, 3].map((b) => `stage${s}.block${b}`));
      expect(convs.map((c) => c.name)).toEqual([
        'stem.conv',
        ...blocks.flatMap((block) => [`${block}.conv1`, `${block}.conv2`]),
      ]);
      expect(convs.find((c) => c.name === 'stage2.block1.conv1')).toEqual({
        name: 'stage2.block1.conv1',
        kernelSize: [3, 3],
        inChannels: 16,
        outChannels: 32,
        strides: [2, 2],
        outputSize: [16, 16],
        params: 3 * 3 * 16 * 32,
        trainable: true,
      });
      expect(convs.at(-1)).toMatchObject({ name: 'stage3.block3.conv2', inChannels: 64, outputSize: [8, 8] });
      const names = model.layers.map((l) => l.name);
      expect(names).toEqual(expect.arrayContaining(['stem.bn', 'stage1.block1.bn2', 'head.pool', 'head.fc']));
      expect(names).toContain('stage3.block1.shortcut.pad');
      expect(new Set(names).size).toBe(names.length);
    });
  });

  it('maps a batch to one logit per class', () => {
    withModel({ arch: 'resnet20', numClasses: 100 }, (model) => {
      const x = batch(2);
      const y = model.predict(x) as tf.Tensor;
      expect(y.shape).toEqual([2, 100]);
      tf.dispose([x, y]);
    });
  });

  it('uses PyTorch BatchNorm defaults and bias-free convs', () => {
    withModel({ arch: 'resnet20' }, (model) => {
      const bn = model.getLayer('stage1.block1.bn1').getConfig();
      expect(bn).toMatchObject({ momentum: 0.9, epsilon: 1e-5 });
      // The only non-trainable weights are the BN moving mean and variance: 688 channels of BN.
      expect(model.countParams() - trainableParams(model)).toBe(2 * (16 + 6 * (16 + 32 + 64)));
      for (const conv of listConvLayers(model)) {
        expect(model.getLayer(conv.name).getConfig().useBias).toBe(false);
      }
    });
  });

  it('option A: the shortcut is the input subsampled by 2 with zero new channels', () => {
    withModel({ arch: 'resnet20', shortcut: 'A' }, (model) => {
      expect(model.layers.some((l) => l.name.includes('shortcut.conv'))).toBe(false);
      const probe = tfl.model({
        inputs: model.inputs,
        outputs: [
          model.getLayer('stage1.block3.relu2').output,
          model.getLayer('stage2.block1.shortcut.pad').output,
        ] as tfl.SymbolicTensor[],
      });
      const x = batch(1);
      const [stage1, shortcut] = probe.predict(x) as tf.Tensor4D[];
      if (!stage1 || !shortcut) throw new Error('probe gave no outputs');
      const expected = tf.tidy(() =>
        tf.concat(
          [tf.stridedSlice(stage1, [0, 0, 0, 0], [1, 32, 32, 16], [1, 2, 2, 1]), tf.zeros([1, 16, 16, 16])],
          3,
        ),
      );
      expect(shortcut.shape).toEqual([1, 16, 16, 32]);
      expect(Array.from(shortcut.dataSync())).toEqual(Array.from(expected.dataSync()));
      tf.dispose([x, stage1, shortcut, expected]);
    });
  });

  it('a stride-2 3×3 conv is centred on the pixels the stride-2 shortcut keeps (PyTorch padding)', () => {
    withModel({ arch: 'resnet20', shortcut: 'B' }, (model) => {
      const pad = model.getLayer('stage2.block1.conv1.pad');
      const conv = model.getLayer('stage2.block1.conv1');
      // A centre-tap kernel copies channel c of the input pixel the output pixel is centred on.
      const centreTapBuffer = tf.buffer([3, 3, 16, 32]);
      for (let c = 0; c < 16; c += 1) centreTapBuffer.set(1, 1, 1, c, c);
      const centreTap = centreTapBuffer.toTensor();
      conv.setWeights([centreTap]);
      const x = tf.randomNormal([1, 32, 32, 16], 0, 1, 'float32', 3);
      const y = conv.apply(pad.apply(x)) as tf.Tensor4D;
      const kept = tf.tidy(() => tf.stridedSlice(x, [0, 0, 0, 0], [1, 32, 32, 16], [1, 2, 2, 1]));
      expect(y.shape).toEqual([1, 16, 16, 32]);
      expect(Array.from(tf.slice(y, [0, 0, 0, 0], [1, 16, 16, 16]).dataSync())).toEqual(
        Array.from(kept.dataSync()),
      );
      tf.dispose([centreTap, x, y, kept]);
    });
  });

  it('option B: a 1×1 stride-2 projection conv + BN at each stage transition', () => {
    const a = withModel({ arch: 'resnet20', shortcut: 'A' }, trainableParams);
    withModel({ arch: 'resnet20', shortcut: 'B' }, (model) => {
      const projections = listConvLayers(model).filter((c) => c.name.includes('shortcut'));
      expect(projections.map(({ name, kernelSize, strides }) => ({ name, kernelSize, strides }))).toEqual([
        { name: 'stage2.block1.shortcut.conv', kernelSize: [1, 1], strides: [2, 2] },
        { name: 'stage3.block1.shortcut.conv', kernelSize: [1, 1], strides: [2, 2] },
      ]);
      expect(model.getLayer('stage2.block1.shortcut.bn').getClassName()).toBe('BatchNormalization');
      expect(trainableParams(model) - a).toBe(16 * 32 + 32 * 64 + 2 * (32 + 64));
    });
  });

  it('gives the same weights for the same seed and different ones for another', () => {
    const weights = (options: CifarResNetOptions) =>
      withModel(options, (model) => model.getWeights().map((w) => Array.from(w.dataSync())));
    const first = weights({ arch: 'resnet20', seed: 7 });
    expect(weights({ arch: 'resnet20', seed: 7 })).toEqual(first);
    expect(weights({ arch: 'resnet20', seed: 8 })[0]).not.toEqual(first[0]);
  });

  it('initialises he-normal with std √(2/fan_out) and pytorch within ±1/√fan_in', () => {
    const kernel = (options: CifarResNetOptions) =>
      withModel(options, (model) =>
        Array.from(model.getLayer('stage3.block2.conv1').getWeights()[0]?.dataSync() ?? []),
      );
    const he = kernel({ arch: 'resnet20', init: 'he-normal' });
    const std = Math.sqrt(he.reduce((sum, v) => sum + v * v, 0) / he.length);
    expect(std / Math.sqrt(2 / (9 * 64))).toBeCloseTo(1, 1);
    const uniform = kernel({ arch: 'resnet20', init: 'pytorch' });
    const bound = 1 / Math.sqrt(9 * 64);
    expect(Math.max(...uniform.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...uniform.map(Math.abs))).toBeGreaterThan(0.95 * bound);
  });

  it('leaks no tensors across build, predict and dispose', () => {
    const x = batch(1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i += 1) {
      withModel({ arch: 'resnet20' }, (model) => tf.dispose(model.predict(x) as tf.Tensor));
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(x);
  });
});

describe('save and load through file://', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-resnet-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(['A', 'B'] as const)(
    'reloads option %s with stock tf.loadLayersModel and predicts identically',
    async (shortcut) => {
      const model = createCifarResNet({ arch: 'resnet20', shortcut, seed: 3 });
      const url = `file://${path.join(dir, shortcut)}`;
      await model.save(url);
      const loaded = await tfl.loadLayersModel(url);
      expect(loaded.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
      const x = batch(2, 5);
      const [expected, actual] = [model.predict(x), loaded.predict(x)] as tf.Tensor[];
      expect(Array.from(actual?.dataSync() ?? [])).toEqual(Array.from(expected?.dataSync() ?? []));
      tf.dispose([x, expected, actual].filter((t) => t !== undefined));
      model.dispose();
      loaded.dispose();
    },
  );
});
