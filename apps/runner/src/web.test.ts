import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CIFAR10_CLASS_NAMES, CIFAR10_MEAN, decodeBatch, findBundledSubset } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { writeSyntheticImageFolder } from '@decompose/images';
import { saveModel } from '@decompose/pipeline';
import {
  BUILT_PAGE_DIR,
  IMAGES_MANIFEST_PATH,
  IMAGES_PATH,
  MODEL_PATHS,
  NODE_PREDICTIONS_PATH,
  type NodePredictions,
  type SiteImagesManifest,
} from '@decompose/web';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import { runCli } from './program.js';
import { Console } from './progress.js';
import { runWeb, webConfigSchema } from './web.js';

const subset = findBundledSubset();

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

/** A scale-by-one layer of a class the page does not register (as a plugin's own layer would be). */
class TestScale extends tfl.layers.Layer {
  static readonly className = 'TestScale';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.clone(Array.isArray(inputs) ? inputs[0]! : inputs);
  }
}
tf.serialization.registerClass(TestScale);

/** conv → global average pool → dense: a small stock classifier of `shape` images (32×32×3) into `classes` logits (10). */
function tinyClassifier(
  convName = 'conv',
  extra?: tfl.layers.Layer,
  filters = 8,
  { shape = [32, 32, 3], classes = 10 } = {},
): tfl.LayersModel {
  const input = tfl.input({ shape, name: 'image' });
  let x = tfl.layers.conv2d({ name: convName, filters, kernelSize: 3, padding: 'same' }).apply(input);
  if (extra) x = extra.apply(x);
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x);
  const logits = tfl.layers.dense({ name: 'fc', units: classes }).apply(x);
  return tfl.model({ inputs: input, outputs: logits as tfl.SymbolicTensor });
}

async function saved(model: tfl.LayersModel, dir: string): Promise<string> {
  await saveModel(model, dir);
  model.dispose();
  return dir;
}

describe('decompose web', () => {
  let work: string;
  let original: string;
  let compressed: string;
  let pageDir: string;
  beforeAll(async () => {
    await initEngine();
    work = await mkdtemp(path.join(tmpdir(), 'decompose-web-'));
    original = await saved(tinyClassifier(), path.join(work, 'tiny', 'model'));
    // The compressed model as the runner writes it: decompose compress on the saved model.
    const compress = await cli(
      'compress',
      ...[
        '--model-dir',
        original,
        '--strategy',
        'svd',
        '--ratio',
        '0.5',
        '--out',
        path.join(work, 'tiny-svd'),
      ],
      ...['--data', subset, '--limit-train', '8', '--limit-test', '8', '--batch', '8'],
    );
    expect(compress.err).toEqual([]);
    compressed = path.join(work, 'tiny-svd');
    // A stand-in for the built page (the real one needs vite build; the last test uses it when built).
    pageDir = path.join(work, 'page');
    await mkdir(path.join(pageDir, 'assets'), { recursive: true });
    await writeFile(path.join(pageDir, 'index.html'), '<!doctype html><title>stand-in</title>');
    await writeFile(path.join(pageDir, 'assets', 'index-x.js'), '// page');
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('writes the page, both models, the test images and Node predictions, and serves them', async () => {
    const out = path.join(work, 'site');
    const lines: string[] = [];
    const result = await runWeb(
      await resolveConfig(webConfigSchema, {
        original,
        compressed,
        data: subset,
        samples: 5,
        out,
        serve: true,
        port: 0,
      }),
      new Console(false, (line) => lines.push(line)),
      { pageDir },
    );
    try {
      expect((await readdir(out)).sort()).toEqual([
        'assets',
        IMAGES_PATH,
        IMAGES_MANIFEST_PATH,
        'index.html',
        'models',
        'node-predictions.json',
      ]);
      // The bundled test batch's pixels, NHWC and not normalised, and CIFAR-10's classes and normalisation.
      const batch = decodeBatch(await readFile(path.join(subset, 'test_batch.bin')));
      const images = await readFile(path.join(out, IMAGES_PATH));
      // Buffer.equals: a deep toEqual over 3 MB of bytes takes seconds.
      expect(images.equals(batch.images)).toBe(true);
      const manifest = JSON.parse(
        await readFile(path.join(out, IMAGES_MANIFEST_PATH), 'utf8'),
      ) as SiteImagesManifest;
      expect(manifest).toMatchObject({
        count: batch.count,
        height: 32,
        width: 32,
        channels: 3,
        classNames: [...CIFAR10_CLASS_NAMES],
        mean: [...CIFAR10_MEAN],
      });
      const predictions = JSON.parse(
        await readFile(path.join(out, NODE_PREDICTIONS_PATH), 'utf8'),
      ) as NodePredictions;
      expect(predictions).toEqual(result.predictions);
      expect(predictions.sampleCount).toBe(5);
      for (const slot of ['original', 'compressed'] as const) {
        expect(predictions.models[slot].classes).toHaveLength(5);
        const weights = path.join(out, path.dirname(MODEL_PATHS[slot]), 'weights.bin');
        expect(predictions.models[slot].weightBytes).toBe((await stat(weights)).size);
      }
      expect(predictions.models.compressed.weightBytes).toBeLessThan(predictions.models.original.weightBytes);
      const served = await fetch(new URL(MODEL_PATHS.compressed, result.server!.url));
      expect(await served.json()).toMatchObject({ modelTopology: expect.anything() });
      expect(await (await fetch(result.server!.url)).text()).toContain('stand-in');
      expect(lines.at(-1)).toBe(`serving ${out} on ${result.server!.url} (Ctrl-C to stop)`);
    } finally {
      await result.server?.close();
    }
  });

  it.each([
    {
      problem: 'a missing model folder',
      args: () => ['--original', path.join(work, 'nowhere'), '--compressed', compressed],
      error: /^error: .*--original: got ".*nowhere"; expected a folder holding model\.json/,
    },
    {
      problem: 'the same model twice',
      args: () => ['--original', original, '--compressed', path.dirname(original)],
      error: /--compressed: got the same model as --original/,
    },
    {
      problem: 'a model not compressed from the original',
      args: () => ['--original', path.join(work, 'other'), '--compressed', compressed],
      error:
        /--compressed: this model was not compressed from --original \(layers conv_svd_\w+, conv_svd_\w+ are not in --original; layers other of --original have no counterpart\)/,
    },
    {
      problem: 'a layer class the page cannot load',
      args: () => ['--original', original, '--compressed', path.join(work, 'custom')],
      error: /--compressed: layer class TestScale \(e\.g\. layer conv_scale\) cannot load in the page/,
    },
    {
      problem: '--port without --serve',
      args: () => ['--original', original, '--compressed', compressed, '--port', '8080'],
      error: /--port: got 8080; port is used only with serve; add --serve/,
    },
    {
      problem: 'a negative --samples',
      args: () => ['--original', original, '--compressed', compressed, '--samples', '-1'],
      error: /--samples: got -1; samples must be a whole number in \[1, 10000\]/,
    },
  ])('refuses $problem with one clear error line (exit 2)', async ({ args, error }) => {
    if (!existsSync(path.join(work, 'other'))) {
      await saved(tinyClassifier('other'), path.join(work, 'other'));
      await saved(tinyClassifier('conv', new TestScale({ name: 'conv_scale' })), path.join(work, 'custom'));
    }
    const out = path.join(work, 'refused');
    const { code, err } = await cli('web', ...args(), '--data', subset, '--out', out);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(error);
    expect(code).toBe(2);
    expect(existsSync(out)).toBe(false);
  });

  it('warns when the compressed model is the larger one (the two swapped?)', async () => {
    const larger = await saved(tinyClassifier('conv', undefined, 16), path.join(work, 'larger'));
    const { code, out } = await cli(
      'web',
      ...['--original', original, '--compressed', larger, '--data', subset, '--samples', '1'],
      ...['--out', path.join(work, 'larger-site')],
    );
    expect(code).toBe(0);
    expect(out).toContain(
      'warning: --compressed has more parameters (618) than --original (314); are the two swapped?',
    );
  });

  it.skipIf(!existsSync(path.join(BUILT_PAGE_DIR, 'index.html')))(
    'copies the built page through the CLI',
    async () => {
      const out = path.join(work, 'cli-site');
      const {
        code,
        err,
        out: lines,
      } = await cli(
        'web',
        ...['--original', original, '--compressed', compressed, '--samples', '2', '--out', out],
      );
      expect(err).toEqual([]);
      expect(code).toBe(0);
      const html = await readFile(path.join(out, 'index.html'), 'utf8');
      const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(script).toBeDefined();
      expect(existsSync(path.join(out, script!))).toBe(true);
      expect(lines.at(-1)).toMatch(/run this again with --serve/);
    },
  );
});

describe('decompose web on your own image folder', () => {
  let work: string;
  let folder: string;
  let original: string;
  let compressed: string;
  let pageDir: string;
  const shapes = { shape: [24, 24, 3], classes: 3 };
  beforeAll(async () => {
    await initEngine();
    work = await mkdtemp(path.join(tmpdir(), 'decompose-web-folder-'));
    // 30×30 PNGs and JPEGs of three classes, resized to the model's 24×24 as they are read.
    folder = path.join(work, 'shapes');
    await writeSyntheticImageFolder(folder, { classes: ['cat', 'dog', 'fox'], perClass: 10, size: [30, 30] });
    original = await saved(tinyClassifier('conv', undefined, 8, shapes), path.join(work, 'shapes-model'));
    compressed = path.join(work, 'shapes-svd');
    const compress = await cli(
      ...['compress', '--model-dir', original, '--strategy', 'svd', '--ratio', '0.5', '--out', compressed],
      ...['--data', folder, '--input-size', '24x24', '--batch', '4', '--bn-images', '0'],
    );
    expect(compress.err).toEqual([]);
    pageDir = path.join(work, 'page');
    await mkdir(path.join(pageDir, 'assets'), { recursive: true });
    await writeFile(path.join(pageDir, 'index.html'), '<!doctype html><title>stand-in</title>');
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it("writes the folder's test split at the model's size, with its class names and --normalize", async () => {
    const out = path.join(work, 'site');
    const config = await resolveConfig(webConfigSchema, {
      original,
      compressed,
      data: folder,
      inputSize: '24x24',
      normalize: '0.5,0.25',
      samples: 4,
      out,
    });
    const lines: string[] = [];
    const result = await runWeb(config, new Console(false, (line) => lines.push(line)), { pageDir });
    const manifest = JSON.parse(
      await readFile(path.join(out, IMAGES_MANIFEST_PATH), 'utf8'),
    ) as SiteImagesManifest;
    // 20 % of each class's 10 images is held out as the test split.
    expect(manifest).toMatchObject({
      count: 6,
      height: 24,
      width: 24,
      channels: 3,
      labels: [0, 0, 1, 1, 2, 2],
      classNames: ['cat', 'dog', 'fox'],
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    });
    expect(manifest.source).toBe(`image folder ${folder}, test split`);
    expect((await stat(path.join(out, IMAGES_PATH))).size).toBe(6 * 24 * 24 * 3);
    expect(result.predictions.sampleCount).toBe(4);
    for (const slot of ['original', 'compressed'] as const) {
      expect(result.predictions.models[slot].classes).toHaveLength(4);
      expect(result.predictions.models[slot].probabilities[0]).toHaveLength(3);
    }
    expect(lines).toContain(
      `wrote the page, both models, 6 test images (image folder ${folder}, test split) and Node's predictions for 4 of them to ${out}`,
    );
  });

  it.each([
    {
      problem: 'no --data for a model that is not CIFAR-10-shaped',
      args: () => [] as string[],
      error:
        /^error: Invalid configuration: --data: not given, so the page would show CIFAR-10's 32×32×3 test images of 10 classes, but --original takes 24×24×3 images and gives 3 classes; pass your image folder, --data <dir> .*--input-size 24x24/,
    },
    {
      problem: 'an --input-size other than the model input',
      args: () => ['--data', folder, '--input-size', '32x32'],
      error:
        /^error: The original model takes inputs of shape \[batch, 24, 24, 3\], but the page's test images \(image folder .*shapes, test split\) are \[batch, 32, 32, 3\]; give it images of the model's size \(decompose web: --data <image folder> --input-size 24x24\)\.$/,
    },
    {
      problem: 'a folder of other classes than the model',
      args: () => ['--data', path.join(work, 'two-classes')],
      error:
        /^error: The models give outputs of shape \[batch, 3\], but the page's test images \(image folder .*two-classes, test split\) have 2 classes, \[batch, 2\]/,
    },
  ])('refuses $problem with one clear error line (exit 2), writing nothing', async ({ args, error }) => {
    const twoClasses = path.join(work, 'two-classes');
    if (!existsSync(twoClasses)) await writeSyntheticImageFolder(twoClasses, { perClass: 5, size: [24, 24] });
    const out = path.join(work, 'refused');
    const { code, err } = await cli(
      'web',
      '--original',
      original,
      '--compressed',
      compressed,
      ...args(),
      '--out',
      out,
    );
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(error);
    expect(code).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});
