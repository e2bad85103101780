import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BasisConv2D, BasisDense } from '@decompose/basis';
import { findBundledSubset } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { loadModel, saveModel } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import type { ExportSummary } from './export.js';
import { runCli } from './program.js';
import { Console } from './progress.js';
import { runWeb, webConfigSchema } from './web.js';

const subset = findBundledSubset();
const tiny = [
  '--data',
  subset,
  '--limit-train',
  '8',
  '--limit-test',
  '8',
  '--batch',
  '8',
  '--bn-images',
  '0',
];

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

/** A scale-by-one layer of a class no strategy lowers (as a plugin's own layer without a lowering would be). */
class UnlowerableScale extends tfl.layers.Layer {
  static readonly className = 'UnlowerableScale';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.clone(Array.isArray(inputs) ? inputs[0]! : inputs);
  }
}
tf.serialization.registerClass(UnlowerableScale);

/** The layer classes of a saved model, from its model.json. */
async function classesIn(dir: string): Promise<string[]> {
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as {
    modelTopology: { config: { layers: { class_name: string }[] } };
  };
  return [...new Set(json.modelTopology.config.layers.map((l) => l.class_name))];
}

describe('decompose export', () => {
  let work: string;
  let original: string;
  const compressed: Record<'basis' | 'svd' | 'tucker', string> = { basis: '', svd: '', tucker: '' };
  beforeAll(async () => {
    await initEngine();
    work = await mkdtemp(path.join(tmpdir(), 'decompose-export-'));
    original = path.join(work, 'r20', 'model');
    const model = createCifarResNet({ arch: 'resnet20' });
    await saveModel(model, original);
    model.dispose();
    for (const strategy of ['basis', 'svd', 'tucker'] as const) {
      compressed[strategy] = path.join(work, `r20-${strategy}`);
      const { code, err } = await cli(
        'compress',
        ...['--model-dir', original, '--strategy', strategy, '--ratio', '0.5', '--out', compressed[strategy]],
        ...tiny,
      );
      expect(err).toEqual([]);
      expect(code).toBe(0);
    }
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('lowers a basis model to stock Conv2D pairs, checks the outputs, and reports the costs', async () => {
    const out = path.join(work, 'r20-basis-stock');
    const {
      code,
      out: lines,
      err,
    } = await cli('export', ...['--model-dir', compressed.basis, '--out', out, '--json']);
    expect(code).toBe(0);
    const summary = JSON.parse(lines.join('\n')) as ExportSummary;
    const basis = await loadModel(path.join(compressed.basis, 'model'));
    // compress's default selection rewrites the Dense head too.
    const basisLayers = basis.layers.filter((l) => l instanceof BasisConv2D || l instanceof BasisDense) as (
      | BasisConv2D
      | BasisDense
    )[];
    expect(basisLayers.at(-1)).toBeInstanceOf(BasisDense);
    basis.dispose();
    expect(basisLayers.length).toBeGreaterThan(0);
    expect(summary.lowered.map((l) => l.layer)).toEqual(basisLayers.map((l) => l.name));
    expect(summary.check.maxAbsDifference).toBeLessThanOrEqual(1e-5);
    expect(summary.after.params).toBeGreaterThanOrEqual(summary.before.params);
    // The stock 1×1 conv stores [I_m | A'ᵀ]: at most m² more parameters per layer.
    const identity = basisLayers.reduce((n, l) => n + l.basisSize ** 2, 0);
    expect(summary.after.params).toBeLessThanOrEqual(summary.before.params + identity);
    expect(err.some((line) => line.startsWith('error'))).toBe(false);
    expect((await readdir(out)).sort()).toEqual(['model.json', 'weights.bin']);
    expect(await classesIn(out)).not.toContain('BasisConv2D');
    expect(await classesIn(out)).not.toContain('BasisDense');

    const dense = await loadModel(original);
    const denseParams = dense.countParams();
    dense.dispose();
    expect(summary.after.params).toBeLessThan(denseParams);
  });

  it('prints the table and the check without --json, and folds BatchNorm on request', async () => {
    const out = path.join(work, 'r20-basis-folded');
    const { code, out: lines } = await cli(
      'export',
      ...['--model-dir', compressed.basis, '--out', out, '--fold-batch-norm'],
    );
    expect(code).toBe(0);
    expect(
      lines.some((l) => /: lowered \d+ BasisConv2D, 1 BasisDense to stock layers, BatchNorm folded$/.test(l)),
    ).toBe(true);
    expect(lines.some((l) => /^before\s+[\d,]+\s+[\d,]+$/.test(l))).toBe(true);
    expect(lines.some((l) => /^after\s+[\d,]+\s+[\d,]+$/.test(l))).toBe(true);
    expect(
      lines.some((l) =>
        /^outputs match: max abs difference \S+ on 8 random images \(tolerance 0\.0001\)$/.test(l),
      ),
    ).toBe(true);
    const classes = await classesIn(out);
    expect(classes).not.toContain('BatchNormalization');
    expect(classes).not.toContain('BasisConv2D');
  });

  it.each(['svd', 'tucker'] as const)(
    'passes a %s model through unchanged: its layers are stock already',
    async (strategy) => {
      const out = path.join(work, `r20-${strategy}-stock`);
      const { code, out: lines } = await cli(
        'export',
        ...['--model-dir', compressed[strategy], '--out', out, '--json'],
      );
      expect(code).toBe(0);
      const summary = JSON.parse(lines.join('\n')) as ExportSummary;
      expect(summary.lowered).toEqual([]);
      expect(summary.check.maxAbsDifference).toBe(0);
      expect(summary.after).toEqual(summary.before);
      const [from, to] = await Promise.all([
        loadModel(path.join(compressed[strategy], 'model')),
        loadModel(out),
      ]);
      expect(to.layers.map((l) => [l.name, l.getClassName()])).toEqual(
        from.layers.map((l) => [l.name, l.getClassName()]),
      );
      from.dispose();
      to.dispose();
    },
  );

  it('gives the web page an exported model, BatchNorm folded or not', async () => {
    const pageDir = path.join(work, 'page');
    await mkdir(path.join(pageDir, 'assets'), { recursive: true });
    await writeFile(path.join(pageDir, 'index.html'), '<!doctype html><title>stand-in</title>');
    for (const exported of ['r20-basis-stock', 'r20-basis-folded']) {
      const compressedDir = path.join(work, exported);
      if (!existsSync(compressedDir)) {
        const folding = exported.endsWith('folded') ? ['--fold-batch-norm'] : [];
        expect(
          (await cli('export', '--model-dir', compressed.basis, '--out', compressedDir, ...folding)).code,
        ).toBe(0);
      }
      const site = path.join(work, `site-${exported}`);
      const config = await resolveConfig(webConfigSchema, {
        original,
        compressed: compressedDir,
        data: subset,
        samples: 2,
        out: site,
      });
      const result = await runWeb(config, new Console(false, () => {}), { pageDir });
      expect(result.predictions.models.compressed.classes).toHaveLength(2);
      expect(result.predictions.models.compressed.weightBytes).toBeLessThan(
        result.predictions.models.original.weightBytes,
      );
      expect(existsSync(path.join(site, 'models', 'compressed', 'model.json'))).toBe(true);
    }
  });

  it.each([
    {
      problem: 'a missing model folder',
      args: () => ['--model-dir', path.join(work, 'nowhere')],
      error:
        /^error: Invalid configuration: --model-dir: got ".*nowhere"; expected a folder holding model\.json/,
    },
    {
      problem: 'a custom layer with no lowering',
      args: () => ['--model-dir', path.join(work, 'custom')],
      error:
        /^error: Layer 'conv_scale' is a UnlowerableScale, a custom layer class with no lowering to stock layers/,
    },
    {
      problem: '--out the same as --model-dir',
      args: () => ['--model-dir', original, '--out', original],
      error: /^error: Invalid configuration: --out: got the folder of --model-dir/,
    },
    {
      problem: 'a zero --batch',
      args: () => ['--model-dir', original, '--batch', '0'],
      error: /--batch: got 0; batch must be a whole number in \[1, 65536\]/,
    },
  ])('refuses $problem with one clear error line (exit 2), writing nothing', async ({ args, error }) => {
    const customDir = path.join(work, 'custom');
    if (!existsSync(customDir)) {
      const x = tfl.input({ shape: [32, 32, 3] });
      const conv = tfl.layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3 }).apply(x);
      const y = new UnlowerableScale({ name: 'conv_scale' }).apply(conv) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: x, outputs: y });
      await saveModel(model, customDir);
      model.dispose();
    }
    const out = path.join(work, 'refused');
    const argv = args();
    const { code, err } = await cli('export', ...argv, ...(argv.includes('--out') ? [] : ['--out', out]));
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(error);
    expect(code).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});
