import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBundledSubset } from '@decompose/cifar10';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompressSummary } from './compress.js';
import type { InspectReport } from './inspect.js';
import { runCli } from './program.js';
import type { TrainSummary } from './train.js';

const subset = findBundledSubset();

/** Runs the program in-process, capturing what it prints. */
async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;

// A tiny run: 16 training images in batches of 8 (2 steps per epoch), 8 test images.
const tiny = ['--data', subset, '--limit-train', '16', '--limit-test', '8', '--batch', '8'];
// Training on the main thread: worker threads would cost more to start than two steps take.
const tinyTraining = [...tiny, '--workers', '0'];

describe('train, resume, eval, inspect and compress on a tiny run', () => {
  let dir: string;
  let run: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-runner-'));
    run = path.join(dir, 'run');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('trains one epoch (a flag over the config file) and writes the model, summary and log', async () => {
    // The config file asks for 3 epochs; the flag overrides it.
    const config = path.join(dir, 'train.yaml');
    await writeFile(
      config,
      `data: ${JSON.stringify(subset)}\nlimitTrain: 16\nlimitTest: 8\nbatch: 8\nepochs: 3\nworkers: 0\n`,
    );
    const { code, out, err } = await cli('train', '--config', config, '--epochs', '1', '--out', run);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(existsSync(path.join(run, 'model', 'model.json'))).toBe(true);
    expect(existsSync(path.join(run, 'model', 'weights.bin'))).toBe(true);
    const summary = await readJson<TrainSummary>(path.join(run, 'summary.json'));
    expect(summary.epochs).toHaveLength(1);
    expect(summary.config).toMatchObject({ batch: 8, workers: 0 });
    expect(summary.data).toMatchObject({ train: 16, test: 8 });
    expect(summary.finalTest?.accuracy).toBeGreaterThanOrEqual(0);
    expect(summary.backend.backend).toBeTypeOf('string');
    const log = await readFile(path.join(run, 'train.log'), 'utf8');
    expect(log).toContain('epoch 1/1: train loss');
    expect(out.some((line) => line.startsWith('epoch 1/1: train loss'))).toBe(true);
  });

  it('resumes an interrupted run and finishes it; a changed setting is refused', async () => {
    const interrupted = path.join(dir, 'interrupted');
    const args = ['train', ...tinyTraining, '--epochs', '2', '--schedule', 'constant', '--out', interrupted];
    // Stop the run right after epoch 1 is checkpointed (onEpoch runs after the checkpoint is written).
    const code = await runCli(args, {
      print: (line) => {
        if (line.startsWith('epoch 1/2: train loss')) throw new Error('interrupted for the test');
      },
      printError: () => {},
      tty: false,
    });
    expect(code).toBe(1);
    expect(existsSync(path.join(interrupted, 'summary.json'))).toBe(false);

    const changed = await cli(...args, '--lr', '0.05', '--resume');
    expect(changed.code).toBe(2);
    expect(changed.err[0]).toMatch(/^error: Checkpoint at .* does not match this run:\n.*schedule\.lr/);

    const resumed = await cli(...args, '--resume');
    expect(resumed.err).toEqual([]);
    expect(resumed.code).toBe(0);
    expect(resumed.out.filter((line) => /^epoch \d\/2: train loss/.test(line))).toEqual([
      expect.stringMatching(/^epoch 2\/2/),
    ]);
    const summary = await readJson<TrainSummary>(path.join(interrupted, 'summary.json'));
    expect(summary.resumedFrom).toBe(1);
    expect(summary.epochs.map((m) => m.epoch)).toEqual([1, 2]);
  });

  it('refuses to resume where there is no checkpoint, in one line with exit code 2', async () => {
    const { code, err, out } = await cli(
      'train',
      ...tiny,
      '--epochs',
      '1',
      '--out',
      path.join(dir, 'empty'),
      '--resume',
    );
    expect(code).toBe(2);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^error: No checkpoint to resume in .*empty/);
    expect(out).toEqual([]);
  });

  it('evaluates the saved model, leaving no tensors behind', async () => {
    await cli('eval', '--model-dir', path.join(run, 'model'), ...tiny);
    const tensors = tf.memory().numTensors;
    const { code, out } = await cli('eval', '--model-dir', path.join(run, 'model'), ...tiny);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(code).toBe(0);
    expect(out.at(-1)).toMatch(/^test: loss \d+\.\d+, accuracy \d+\.\d%.* on 8 images, \d+ img\/s$/);
  });

  it('inspects the saved model as JSON, with measured times', async () => {
    const { code, out } = await cli(
      'inspect',
      '--model-dir',
      path.join(run, 'model'),
      '--json',
      '--batch',
      '2',
      '--repeats',
      '1',
    );
    expect(code).toBe(0);
    const report = JSON.parse(out.join('\n')) as InspectReport;
    const conv = report.rows.find((row) => row.name === 'stage1.block1.conv1');
    expect(conv).toMatchObject({ className: 'Conv2D', outputShape: [32, 32, 16], params: 3 * 3 * 16 * 16 });
    expect(conv?.forwardMacs).toBe(32 * 32 * 3 * 3 * 16 * 16);
    expect(conv?.forwardMs).toBeGreaterThan(0);
    expect(report.total.params).toBe(report.rows.reduce((sum, row) => sum + row.params, 0));
  });

  it('compresses with a built-in strategy, re-estimates BatchNorm, and reports before and after', async () => {
    const out = path.join(dir, 'svd');
    const result = await cli(
      'compress',
      '--model-dir',
      path.join(run, 'model'),
      '--strategy',
      'svd',
      '--ratio',
      '0.5',
      '--layers',
      'stage3.*.conv2',
      '--bn-images',
      '8',
      ...tiny,
      '--out',
      out,
    );
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    const summary = await readJson<CompressSummary>(path.join(out, 'summary.json'));
    expect(summary.report.map((r) => r.layer)).toEqual([
      'stage3.block1.conv2',
      'stage3.block2.conv2',
      'stage3.block3.conv2',
    ]);
    expect(summary.compressed.params).toBeLessThan(summary.before.params);
    // The BatchNorm statistics are re-estimated after surgery; only they change, not the costs.
    expect(summary.config.bnImages).toBe(8);
    expect(summary.reestimated).toMatchObject({
      params: summary.compressed.params,
      forwardMacs: summary.compressed.forwardMacs,
    });
    expect(Number.isFinite(summary.reestimated?.accuracy)).toBe(true);
    expect(Number.isFinite(summary.reestimated?.loss)).toBe(true);
    expect(result.out).toContainEqual(
      expect.stringMatching(/^re-estimated \d+ BatchNorm layers on 8 augmented training images$/),
    );
    expect(result.out.some((line) => line.startsWith('svd + BatchNorm re-estimated '))).toBe(true);
    const evaluated = await cli('eval', '--model-dir', path.join(out, 'model'), ...tiny);
    expect(evaluated.code).toBe(0);
  });

  it('compresses every layer the strategy supports by default, the Dense head included, as applyStrategy does', async () => {
    const out = path.join(dir, 'basis-default');
    const flags = ['--strategy', 'basis', '--ratio', '0.5', '--bn-images', '0', ...tiny, '--out', out];
    const result = await cli('compress', '--model-dir', path.join(run, 'model'), ...flags);
    expect(result.err).toEqual([]);
    const summary = await readJson<CompressSummary>(path.join(out, 'summary.json'));
    const layers = summary.report.map((r) => r.layer);
    expect(layers).toContain('stem.conv');
    expect(layers).toContain('head.fc');
    expect(summary.report.find((r) => r.layer === 'head.fc')?.className).toBe('Dense');
    const evaluated = await cli('eval', '--model-dir', path.join(out, 'model'), ...tiny);
    expect(evaluated.code).toBe(0);
  });

  it('compresses the layers of a selection file, fine-tunes, and saves a model that loads again', async () => {
    const out = path.join(dir, 'basis');
    const selection = path.join(dir, 'selection.json');
    await writeFile(
      selection,
      JSON.stringify({ choices: [{ layer: 'stage2.block1.conv2', options: { ratio: 0.25 } }] }),
    );
    const result = await cli(
      'compress',
      '--model-dir',
      path.join(run, 'model'),
      '--strategy',
      'basis',
      '--selection',
      selection,
      '--fine-tune-epochs',
      '1',
      '--bn-images',
      '0',
      ...tinyTraining,
      '--out',
      out,
    );
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    const summary = await readJson<CompressSummary>(path.join(out, 'summary.json'));
    expect(summary.report.map((r) => [r.layer, r.options])).toEqual([
      ['stage2.block1.conv2', expect.objectContaining({ ratio: 0.25 })],
    ]);
    expect(summary.fineTuned?.params).toBe(summary.compressed.params);
    // --bn-images 0 keeps the baseline's BatchNorm statistics.
    expect(summary.reestimated).toBeNull();
    expect(result.out.filter((line) => /re-estimated/.test(line))).toEqual([]);
    expect(result.out.at(-1)).toBe(`saved to ${path.join(out, 'model')}`);

    const inspected = await cli('inspect', '--model-dir', path.join(out, 'model'), '--json', '--no-timing');
    const report = JSON.parse(inspected.out.join('\n')) as InspectReport;
    expect(report.total.params).toBe(summary.compressed.params);
    expect(report.rows.every((row) => row.forwardMs === null)).toBe(true);
    expect(report.uncosted).toEqual([]);
    const basis = report.rows.find((row) => row.name === 'stage2.block1.conv2');
    expect(basis?.className).toBe('BasisConv2D');
    expect(basis?.forwardMacs).toBeGreaterThan(0);
  });

  it('names an unknown strategy and bad strategy options', async () => {
    const model = ['--model-dir', path.join(run, 'model'), ...tiny, '--out', path.join(dir, 'never')];
    const unknown = await cli('compress', ...model, '--strategy', './no-such-plugin.js', '--ratio', '0.5');
    expect(unknown.code).toBe(2);
    expect(unknown.err[0]).toMatch(/^error: .*no-such-plugin/);
    const badOptions = await cli('compress', ...model, '--strategy', 'svd', '--options', '{"ratio":2}');
    expect(badOptions.code).toBe(2);
    expect(badOptions.err[0]).toMatch(/^error: .*ratio/);
  });
});
