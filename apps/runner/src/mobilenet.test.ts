import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isStockLayerClass } from '@decompose/core';
import { fileSystem, initEngine } from '@decompose/engine';
import { writeSyntheticImageFolder } from '@decompose/images';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompressSummary } from './compress.js';
import type { ExportSummary } from './export.js';
import type { InspectReport } from './inspect.js';
import { runCli } from './program.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

const relu6 = (name: string) => tfl.layers.reLU({ name, maxValue: 6 });

/** A MobileNetV2-style inverted residual: 1×1 expand, 3×3 depthwise, 1×1 project, residual when shapes allow. */
function invertedResidual(x: tfl.SymbolicTensor, name: string, expand: number, out: number, stride: number) {
  const channels = x.shape[3] as number;
  let y = tfl.layers
    .conv2d({ name: `${name}_expand`, filters: channels * expand, kernelSize: 1, useBias: false })
    .apply(x) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ name: `${name}_expand_bn` }).apply(y) as tfl.SymbolicTensor;
  y = relu6(`${name}_expand_relu`).apply(y) as tfl.SymbolicTensor;
  if (stride === 2)
    y = tfl.layers.zeroPadding2d({ name: `${name}_pad`, padding: 1 }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers
    .depthwiseConv2d({
      name: `${name}_depthwise`,
      kernelSize: 3,
      strides: stride,
      padding: stride === 2 ? 'valid' : 'same',
      useBias: false,
    })
    .apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ name: `${name}_depthwise_bn` }).apply(y) as tfl.SymbolicTensor;
  y = relu6(`${name}_depthwise_relu`).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers
    .conv2d({ name: `${name}_project`, filters: out, kernelSize: 1, useBias: false })
    .apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.batchNormalization({ name: `${name}_project_bn` }).apply(y) as tfl.SymbolicTensor;
  return stride === 1 && channels === out
    ? (tfl.layers.add({ name: `${name}_add` }).apply([x, y]) as tfl.SymbolicTensor)
    : y;
}

/** The user model, from stock layers: ZeroPadding2D, DepthwiseConv2D, ReLU(6), a Dense head, an L1L2 regulariser. */
function mobileNetV2Style(): tfl.LayersModel {
  const input = tfl.input({ shape: [48, 48, 3], name: 'image' });
  let x = tfl.layers.zeroPadding2d({ name: 'stem_pad', padding: 1 }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({
      name: 'stem_conv',
      filters: 16,
      kernelSize: 3,
      strides: 2,
      useBias: false,
      kernelRegularizer: tfl.regularizers.l1l2({ l1: 1e-5, l2: 1e-4 }),
    })
    .apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.batchNormalization({ name: 'stem_bn' }).apply(x) as tfl.SymbolicTensor;
  x = relu6('stem_relu').apply(x) as tfl.SymbolicTensor;
  x = invertedResidual(x, 'block_1', 3, 24, 2);
  x = invertedResidual(x, 'block_2', 3, 24, 1);
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers.dense({ name: 'logits', units: CLASSES.length }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name: 'mobilenet_v2_style' });
}

/** The user's data: a class-per-subfolder image folder (PNG and JPEG, 56×56, resized to the model's 48×48). */
const CLASSES = ['cat', 'dog', 'fox', 'owl', 'ram'];

const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;

describe('a MobileNetV2-style model of stock layers and an image folder, end to end on the default wasm backend', () => {
  let dir: string;
  let modelDir: string;
  let data: string[];
  beforeAll(async () => {
    await initEngine();
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-mobilenet-'));
    const folder = path.join(dir, 'images');
    await writeSyntheticImageFolder(folder, { classes: CLASSES, perClass: 8, size: [56, 56], split: true });
    data = ['--data', folder];
    modelDir = path.join(dir, 'model');
    const model = mobileNetV2Style();
    await model.save(fileSystem(modelDir));
    model.dispose();
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('inspect times every layer and costs the depthwise convolutions', async () => {
    const { code, out, err } = await cli(
      'inspect',
      '--model-dir',
      modelDir,
      '--json',
      '--batch',
      '4',
      '--repeats',
      '1',
    );
    expect(err.filter((line) => line.startsWith('error'))).toEqual([]);
    expect(code).toBe(0);
    const report = JSON.parse(out.join('\n')) as InspectReport;
    const depthwise = report.rows.find((row) => row.name === 'block_1_depthwise');
    // 3×3 over 48 channels at 12×12 outputs (stride 2 from 24×24).
    expect(depthwise?.forwardMacs).toBe(9 * 48 * 12 * 12);
    expect(report.rows.every((row) => row.forwardBackwardMs !== null && row.forwardBackwardMs > 0)).toBe(
      true,
    );
  });

  it('sensitivity scans its convolutions and its Dense head on the image folder', async () => {
    const out = path.join(dir, 'scan');
    const { code, err } = await cli(
      'sensitivity',
      ...['--model-dir', modelDir, '--strategy', 'svd', '--ratios', '0.5', '--calibration', '16'],
      ...[...data, '--batch', '16', '--workers', '0', '--out', out],
    );
    expect(err.filter((line) => line.startsWith('error'))).toEqual([]);
    expect(code).toBe(0);
    const table = await readJson<{ entries: { layer: string }[] }>(path.join(out, 'sensitivity.json'));
    expect(table.entries.map((e) => e.layer)).toContain('block_2_project');
    // The default candidates are applyStrategy's: the Dense head too, not only the convolutions.
    expect(table.entries.map((e) => e.layer)).toContain('logits');
    expect(await readFile(path.join(out, 'sensitivity.csv'), 'utf8')).toMatch(/^logits,/m);
  });

  it.each(['basis', 'svd'])(
    'compress with %s (Dense head included), 1 fine-tune epoch, export to stock layers that plain tfjs loads',
    async (strategy) => {
      const out = path.join(dir, `compressed-${strategy}`);
      const compressed = await cli(
        'compress',
        ...['--model-dir', modelDir, '--strategy', strategy, '--ratio', '0.5', '--fine-tune-epochs', '1'],
        ...[...data, '--batch', '16', '--bn-images', '32', '--workers', '0', '--out', out],
      );
      expect(compressed.err.filter((line) => line.startsWith('error'))).toEqual([]);
      expect(compressed.code).toBe(0);
      const summary = await readJson<CompressSummary>(path.join(out, 'summary.json'));
      const rewritten = summary.report.map((r) => r.layer);
      expect(rewritten).toContain('logits');
      expect(rewritten).toContain('block_2_project');
      // The stem's L1L2 regulariser: on SVD's stock replacements, or named in the report as not carried.
      const stem = summary.report.find((r) => r.layer === 'stem_conv');
      if (strategy === 'svd') {
        const saved = await readJson<{
          modelTopology: { config: { layers: { name: string; config: { kernel_regularizer?: unknown } }[] } };
        }>(path.join(out, 'model', 'model.json'));
        const replacements = saved.modelTopology.config.layers.filter((l) =>
          stem?.replacements.includes(l.name),
        );
        expect(replacements).toHaveLength(2);
        for (const layer of replacements)
          expect(layer.config.kernel_regularizer).toMatchObject({ class_name: 'L1L2' });
      } else {
        expect(stem?.notes).toEqual([expect.stringMatching(/kernel regulariser L1L2 was not carried over/)]);
      }
      const skipped = summary.skipped.find((s) => s.layer === 'block_1_depthwise');
      expect(skipped?.reason).toMatch(/depthwise/);
      expect(summary.fineTuned?.accuracy).toBeTypeOf('number');
      expect(summary.compressed.params).toBeLessThan(summary.before.params);

      const exported = path.join(dir, `exported-${strategy}`);
      const exportRun = await cli('export', '--model-dir', out, '--out', exported, '--json');
      expect(exportRun.code).toBe(0);
      const exportSummary = JSON.parse(exportRun.out.join('\n')) as ExportSummary;
      expect(exportSummary.check.maxAbsDifference).toBeLessThanOrEqual(1e-5);
      const json = await readJson<{ modelTopology: { config: { layers: { class_name: string }[] } } }>(
        path.join(exported, 'model.json'),
      );
      const classes = new Set(json.modelTopology.config.layers.map((l) => l.class_name));
      expect([...classes].filter((c) => !isStockLayerClass(c))).toEqual([]);
      const stock = await tfl.loadLayersModel(fileSystem(exported));
      const logits = tf.tidy(() => (stock.predict(tf.zeros([2, 48, 48, 3])) as tf.Tensor).shape);
      expect(logits).toEqual([2, CLASSES.length]);
      stock.dispose();
    },
  );
});
