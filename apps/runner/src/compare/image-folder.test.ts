import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileSystem, initEngine } from '@decompose/engine';
import { writeSyntheticImageFolder } from '@decompose/images';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCommand } from '../test-command.js';
import { registerCompareCommand } from './command.js';
import type { CompareResults } from './results.js';

/** Runs `decompose compare` in-process. */
const compare = (...argv: string[]) => runCommand(registerCompareCommand, 'compare', argv);

/** A stock 16×16×3 classifier into 3 classes: two convolutions, a BatchNorm and a Dense head. */
function tinyClassifier(): tfl.LayersModel {
  const input = tfl.input({ shape: [16, 16, 3] });
  let x = tfl.layers
    .conv2d({ name: 'conv1', filters: 8, kernelSize: 3, padding: 'same' })
    .apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'bn1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reLU({ name: 'relu1' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({ name: 'conv2', filters: 8, kernelSize: 3, strides: 2, padding: 'same' })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ name: 'head', units: 3 }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name: 'tiny' });
}

describe('decompose compare on an image folder and a stock model', () => {
  let dir: string;
  let images: string;
  let configFile: string;
  beforeAll(async () => {
    await initEngine();
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-compare-images-'));
    images = path.join(dir, 'shapes');
    // 20×20 files, resized to the model's 16×16 input; 8 per class, a quarter of each held out as the test set.
    await writeSyntheticImageFolder(images, { classes: ['a', 'b', 'c'], perClass: 8, size: [20, 20] });
    const model = tinyClassifier();
    await model.save(fileSystem(path.join(dir, 'model')));
    model.dispose();
    configFile = path.join(dir, 'compare.yaml');
    await writeFile(
      configFile,
      stringify({
        run: 'mine',
        reportDir: path.join(dir, 'reports'),
        baseline: { modelDir: path.join(dir, 'model') },
        fineTune: { epochs: 1, batch: 6, lr: 0.01, bnImages: 6, workers: 0 },
        measure: { batch: 4, steps: 1 },
        arms: [
          {
            name: 'basis-selected',
            strategy: 'basis',
            select: { budget: 'params:0.3', ratios: [0.5], calibration: 6, workers: 0 },
          },
          { name: 'svd-all', strategy: 'svd', options: { ratio: 0.5 } },
        ],
      }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('compares the arms on the folder, Dense head included, and records the test split', async () => {
    const { code, err, out } = await compare(
      ...['--config', configFile, '--data', images, '--test-fraction', '0.25', '--split-seed', '3'],
    );
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(
      /image folder .*shapes \(3 classes, 16×16, 18 train, 6 test images, test = a seeded 25% of each class \(seed 3\)\)/,
    );
    const report = path.join(dir, 'reports', 'mine');
    const results = JSON.parse(await readFile(path.join(report, 'results.json'), 'utf8')) as CompareResults;
    expect(results.data).toMatchObject({
      dir: images,
      kind: 'images',
      train: 18,
      test: 6,
      testSplit: { fraction: 0.25, seed: 3 },
    });
    expect(results.baseline.trainedHere).toBe(false);
    const [selected, svd] = results.arms;
    // The scan's candidates are the default selection's: both convolutions and the Dense head.
    expect(selected?.scan?.layers.map((l) => l.layer)).toEqual(['conv1', 'conv2', 'head']);
    // SVD at ratio 0.5 saves nothing on the 8→3 head, so surgery lists it as skipped, with its reason.
    expect(svd?.rewritten.map((r) => r.layer)).toEqual(['conv1', 'conv2']);
    expect(svd?.skipped.map((s) => s.layer)).toEqual(['head']);
    for (const arm of results.arms) {
      expect(arm.accuracy).toBeGreaterThanOrEqual(0);
      expect(arm.fineTune.epochs).toHaveLength(1);
    }
    expect(await readFile(path.join(report, 'report.md'), 'utf8')).toContain(
      'test images: a seeded 25% of each class (seed 3)',
    );
  });
});
