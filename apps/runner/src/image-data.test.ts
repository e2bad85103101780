import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileSystem, initEngine } from '@decompose/engine';
import { writeSyntheticImageFolder } from '@decompose/images';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './program.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

/** A small classifier of `[height, width, channels]` images into `classes` classes. */
function classifier(shape: [number, number, number], classes: number, name = 'pets'): tfl.LayersModel {
  const input = tfl.input({ shape });
  let x = tfl.layers
    .conv2d({ name: 'conv1', filters: 8, kernelSize: 3, strides: 2, padding: 'same' })
    .apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'relu1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({ name: 'conv2', filters: 8, kernelSize: 3, strides: 2, padding: 'same' })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ name: 'head', units: classes }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name });
}

describe('a 64×64 model on a 64×64 image folder', () => {
  let dir: string;
  let images: string;
  const models: Record<string, string> = {};
  beforeAll(async () => {
    await initEngine();
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-image-data-'));
    images = path.join(dir, 'pets');
    // 48×48 files: resized to the model's 64×64 input, as no --input-size is given.
    await writeSyntheticImageFolder(images, { classes: ['cat', 'dog', 'fox'], perClass: 6, size: [48, 48] });
    const variants: Record<string, tfl.LayersModel> = {
      fits: classifier([64, 64, 3], 3),
      tenClasses: classifier([64, 64, 3], 10),
      grey: classifier([64, 64, 1], 3),
    };
    for (const [key, model] of Object.entries(variants)) {
      models[key] = path.join(dir, key);
      await model.save(fileSystem(models[key]!));
      model.dispose();
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('eval reads the folder at the model’s input size and reports the test accuracy', async () => {
    const result = await cli('eval', '--model-dir', models.fits!, '--data', images, '--batch', '4');
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.out.join('\n')).toMatch(/image folder .*pets \(3 classes, 64×64, 14 train, 4 test images/);
    expect(result.out.join('\n')).toMatch(/test: loss \d+\.\d+, accuracy .* on 4 images/);
  });

  it('compress re-estimates BatchNorm and fine-tunes one epoch on it', async () => {
    const out = path.join(dir, 'compressed');
    const result = await cli(
      ...['compress', '--model-dir', models.fits!, '--data', images, '--strategy', 'basis', '--ratio', '0.5'],
      ...['--fine-tune-epochs', '1', '--batch', '4', '--workers', '0', '--bn-images', '8', '--out', out],
      ...['--normalize', '0.5,0.25'],
    );
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    const summary = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.fineTuned).not.toBeNull();
    expect(summary.reestimated).not.toBeNull();
    expect(existsSync(path.join(out, 'model', 'model.json'))).toBe(true);
  });

  it('sensitivity scans the model on a calibration split of the folder', async () => {
    const out = path.join(dir, 'scan');
    const result = await cli(
      ...['sensitivity', '--model-dir', models.fits!, '--data', images, '--strategy', 'basis'],
      ...['--ratios', '0.5', '--calibration', '4', '--workers', '0', '--out', out],
    );
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    const table = JSON.parse(await readFile(path.join(out, 'sensitivity.json'), 'utf8'));
    expect(table.calibrationSize ?? table.table?.calibrationSize).toBe(4);
  });

  it('compress without --data rewrites and saves the model alone, and says so', async () => {
    const out = path.join(dir, 'no-data');
    const compress = ['compress', '--model-dir', models.fits!, '--strategy', 'basis', '--ratio', '0.5'];
    const result = await cli(...compress, '--out', out);
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    const text = result.out.join('\n');
    expect(text).toMatch(
      /no data: the model takes \[64, 64, 3\] inputs, not CIFAR-10's .*no BatchNorm re-estimation, no fine-tuning and no accuracy/,
    );
    expect(text).not.toMatch(/^data:/m);
    const summary = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.before.accuracy).toBeNull();
    expect(summary.compressed.loss).toBeNull();
    expect(summary.reestimated).toBeNull();
    expect(summary.compressed.params).toBeLessThan(summary.before.params);
    expect(existsSync(path.join(out, 'model', 'model.json'))).toBe(true);
    const fineTune = await cli(...compress, '--fine-tune-epochs', '1', '--out', path.join(dir, 'no-data-ft'));
    expect(fineTune.err).toHaveLength(1);
    expect(fineTune.err[0]).toMatch(
      /^error: .*--fine-tune-epochs: got 1; fine-tuning needs training images.*pass --data/,
    );
    expect(fineTune.code).toBe(2);
  });

  it.each([
    [
      'classes',
      'tenClasses',
      [],
      /takes input \[64, 64, 3\] and predicts 10 classes.*\[64, 64, 3\] images .*of 3 classes \(image folder .*pets\)/,
    ],
    ['size', 'fits', ['--input-size', '32x32'], /takes input \[64, 64, 3\].*\[32, 32, 3\] images/],
    ['channels', 'grey', [], /takes input \[64, 64, 1\].*\[64, 64, 3\] images/],
  ])(
    'a %s mismatch is one error line naming both, before any work (exit 2)',
    async (_what, key, flags, named) => {
      const out = path.join(dir, `mismatch-${key}`);
      for (const command of [
        ['eval', '--model-dir', models[key]!, '--data', images, ...flags],
        [
          'compress',
          '--model-dir',
          models[key]!,
          '--data',
          images,
          '--strategy',
          'basis',
          '--ratio',
          '0.5',
          '--out',
          out,
          ...flags,
        ],
      ]) {
        const result = await cli(...command);
        expect(result.err).toHaveLength(1);
        expect(result.err[0]).toMatch(/^error: Model 'pets' /);
        expect(result.err[0]).toMatch(named);
        expect(result.code).toBe(2);
      }
      expect(existsSync(path.join(out, 'summary.json'))).toBe(false);
    },
  );

  it('refuses a folder of neither layout, bad flags and --input-size with CIFAR-10, in one line', async () => {
    const neither = path.join(dir, 'neither');
    await writeSyntheticImageFolder(neither, { classes: ['x'], perClass: 1 });
    await rm(path.join(neither, 'x', 'x-0.png'));
    await writeFile(path.join(neither, 'x', 'notes.txt'), 'no images here');
    const cases: [string[], RegExp][] = [
      [['--data', neither], /neither a CIFAR-10 binary folder .* nor an image folder/],
      [['--data', images, '--input-size', '64'], /--input-size: got "64"; inputSize must be HxW/],
      [['--data', images, '--normalize', '0.5,0'], /--normalize: got "0.5,0"; normalize must be mean,std/],
      [['--input-size', '64x64'], /--input-size: got "64x64"; CIFAR-10 .* images are 32x32/],
    ];
    for (const [flags, message] of cases) {
      const result = await cli('eval', '--model-dir', models.fits!, ...flags);
      expect(result.err).toHaveLength(1);
      expect(result.err[0]).toMatch(message);
      expect(result.code).toBe(2);
    }
  });
});
