import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBundledSubset } from '@decompose/cifar10';
import { fileSystem, initEngine } from '@decompose/engine';
import { writeSyntheticImageFolder } from '@decompose/images';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './program.js';
import type { TrainSummary } from './train.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

/** A stock 8×8×3 classifier into `classes` classes. */
function classifier(classes: number): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 3] });
  const x = tfl.layers
    .conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same' })
    .apply(input) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ name: 'head', units: classes }).apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits });
}

describe('--test-fraction and --split-seed', () => {
  let dir: string;
  let single: string;
  let split: string;
  let modelDir: string;
  beforeAll(async () => {
    await initEngine();
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-test-split-'));
    single = path.join(dir, 'single');
    split = path.join(dir, 'split');
    await writeSyntheticImageFolder(single, { classes: ['a', 'b', 'c'], perClass: 6, size: [8, 8] });
    await writeSyntheticImageFolder(split, {
      classes: ['a', 'b', 'c'],
      perClass: 2,
      size: [8, 8],
      split: true,
    });
    modelDir = path.join(dir, 'model');
    const model = classifier(3);
    await model.save(fileSystem(modelDir));
    model.dispose();
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('split a folder of class subfolders: a seeded share of each class (20 %, seed 0 by default)', async () => {
    const eval_ = (...flags: string[]) => cli('eval', '--model-dir', modelDir, '--data', single, ...flags);
    const byDefault = await eval_();
    expect(byDefault.err).toEqual([]);
    expect(byDefault.out.join('\n')).toContain(
      '14 train, 4 test images, test = a seeded 20% of each class (seed 0))',
    );
    const half = await eval_('--test-fraction', '0.5', '--split-seed', '7');
    expect(half.err).toEqual([]);
    expect(half.code).toBe(0);
    expect(half.out.join('\n')).toContain(
      '9 train, 9 test images, test = a seeded 50% of each class (seed 7))',
    );
  });

  it('are recorded in the training summary', async () => {
    // `train` builds a CIFAR ResNet: 10 classes of 32×32 images.
    const cifarLike = path.join(dir, 'ten');
    const classes = Array.from({ length: 10 }, (_, i) => `class${i}`);
    await writeSyntheticImageFolder(cifarLike, { classes, perClass: 3, size: [32, 32] });
    const out = path.join(dir, 'run');
    const { code, err } = await cli(
      ...['train', '--data', cifarLike, '--test-fraction', '0.34', '--split-seed', '5', '--epochs', '1'],
      ...['--batch', '10', '--workers', '0', '--no-augment', '--out', out],
    );
    expect(err).toEqual([]);
    expect(code).toBe(0);
    const summary = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8')) as TrainSummary;
    expect(summary.data).toMatchObject({ kind: 'images', train: 20, test: 10 });
    expect(summary.data.testSplit).toEqual({ fraction: 0.34, seed: 5 });
  });

  it('are refused, in one line, for data with its own test set: train/ and test/, or CIFAR-10', async () => {
    const splitFolder = await cli('eval', '--model-dir', modelDir, '--data', split, '--test-fraction', '0.3');
    expect(splitFolder.code).toBe(2);
    expect(splitFolder.err).toEqual([
      expect.stringMatching(
        /^error: Invalid configuration: --test-fraction 0\.3: .*split has train\/ and test\/ subfolders, which are used as they are; drop the flag/,
      ),
    ]);
    const both = await cli(
      ...['eval', '--model-dir', modelDir, '--data', split, '--test-fraction', '0.3', '--split-seed', '1'],
    );
    expect(both.err[0]).toMatch(/--test-fraction 0\.3, --split-seed 1: .* drop the flags/);
    const cifar = await cli(
      'eval',
      '--model-dir',
      modelDir,
      '--data',
      findBundledSubset(),
      '--split-seed',
      '1',
    );
    expect(cifar.code).toBe(2);
    expect(cifar.err).toEqual([
      expect.stringMatching(
        /^error: Invalid configuration: --split-seed 1: CIFAR-10 \(.*\) has its own test set/,
      ),
    ]);
  });
});
