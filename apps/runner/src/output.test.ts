import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBundledSubset } from '@decompose/cifar10';
import type { EngineInfo } from '@decompose/engine';
import { initEngine } from '@decompose/engine';
import { saveModel } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import type { EvaluationResult } from '@decompose/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CompressSummary } from './compress.js';
import { describeEngine, ENGINE_LINE_LIMIT } from './engine-report.js';
import type { InspectReport } from './inspect.js';
import { runCli } from './program.js';
import { Console } from './progress.js';

/** Runs the program in-process, capturing what it prints on stdout (`out`) and stderr (`err`). */
async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

it('prints the version of the runner package', async () => {
  const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  expect(await cli('--version')).toEqual({ code: 0, out: [manifest.version], err: [] });
});

describe('the engine report', () => {
  const wasm = (skipped: EngineInfo['skipped']): EngineInfo => ({
    backend: 'wasm',
    threads: 16,
    skipped,
    engineKernels: ['Conv2DBackpropFilter', 'FusedBatchNormGrad'],
  });
  const tensorflow = (reason: string) => ({
    backend: 'tensorflow' as const,
    reason,
    detail:
      'The Node.js native addon module (tfjs_binding.node) can not be found at path: /a/long/path/tfjs_binding.node.',
    fix: 'Reinstall with network access, or use DECOMPOSE_BACKEND=wasm.',
  });

  it('is one short line by default, naming a skipped backend and why in a few words', () => {
    for (const reason of [
      'tfjs-node not installed',
      'tfjs-node native addon missing',
      'tfjs-node did not load',
      'tfjs-node registered no backend',
    ]) {
      const lines = describeEngine(wasm([tensorflow(reason)]), false);
      expect(lines).toEqual([`backend: wasm (16 threads; tensorflow skipped: ${reason}, see --verbose)`]);
      expect(lines[0]!.length).toBeLessThanOrEqual(ENGINE_LINE_LIMIT);
    }
    expect(describeEngine(wasm([]), false)).toEqual(['backend: wasm (16 threads)']);
  });

  it('names only the skipped backend when its reason would make the line too long', () => {
    const lines = describeEngine(wasm([tensorflow('x'.repeat(80))]), false);
    expect(lines).toEqual(['backend: wasm (16 threads; tensorflow skipped, see --verbose)']);
  });

  it('gives the underlying error, the fix and the engine kernels with --verbose', () => {
    const skipped = tensorflow('tfjs-node native addon missing');
    expect(describeEngine(wasm([skipped]), true)).toEqual([
      'backend: wasm (16 threads)',
      `skipped tensorflow: ${skipped.reason} (${skipped.detail}). ${skipped.fix}`,
      'engine kernels: Conv2DBackpropFilter, FusedBatchNormGrad',
    ]);
  });

  it('is what the commands print, one line unless --verbose', async () => {
    const { code, out } = await cli('inspect', '--no-timing');
    expect(code).toBe(0);
    const engine = await initEngine();
    expect(out[0]).toBe(describeEngine(engine, false)[0]);
    expect(out[1]).not.toMatch(/^(skipped|engine kernels)/);
    const verbose = await cli('--verbose', 'inspect', '--no-timing');
    expect(verbose.out.slice(0, describeEngine(engine, true).length)).toEqual(describeEngine(engine, true));
  });
});

describe('--json and --quiet', () => {
  const subset = findBundledSubset();
  const tiny = ['--data', subset, '--limit-train', '16', '--limit-test', '8', '--batch', '8'];
  let dir: string;
  let modelDir: string;
  beforeAll(async () => {
    await initEngine();
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-output-'));
    modelDir = path.join(dir, 'model');
    const model = createCifarResNet({ arch: 'resnet20', seed: 1 });
    await saveModel(model, modelDir);
    model.dispose();
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Runs a command with `--json`: stdout must be exactly one JSON document; the log lines go to stderr. */
  async function json<T>(...argv: string[]): Promise<{ result: T; err: string[] }> {
    const { code, out, err } = await cli(...argv, '--json');
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    expect(err.some((line) => line.startsWith('backend: '))).toBe(true);
    return { result: JSON.parse(out[0]!) as T, err };
  }

  it('eval --json prints the evaluation', async () => {
    const { result } = await json<EvaluationResult>('eval', '--model-dir', modelDir, ...tiny);
    expect(result.count).toBe(8);
    expect(result.accuracy).toBeGreaterThanOrEqual(0);
  });

  it('compress --json prints the summary', async () => {
    const out = path.join(dir, 'svd');
    const { result, err } = await json<CompressSummary>(
      ...['compress', '--model-dir', modelDir, '--strategy', 'svd', '--ratio', '0.5'],
      ...['--layers', 'stage3.block3.conv2', '--bn-images', '0', ...tiny, '--out', out],
    );
    expect(result.report.map((r) => r.layer)).toEqual(['stage3.block3.conv2']);
    expect(result.modelDir).toBe(path.join(out, 'model'));
    // The human-readable table is replaced by the JSON, not moved to stderr.
    expect(err.some((line) => line.startsWith('saved to'))).toBe(false);
  });

  it('inspect --json prints the report, its progress on stderr', async () => {
    const { result, err } = await json<InspectReport>(
      ...['inspect', '--model-dir', modelDir, '--batch', '1', '--repeats', '1'],
    );
    expect(result.rows.length).toBeGreaterThan(0);
    expect(err.some((line) => line.startsWith('timing layers: '))).toBe(true);
  });

  it('--quiet leaves only the result, before or after the command', async () => {
    for (const argv of [
      ['--quiet', 'eval', '--model-dir', modelDir, ...tiny],
      ['eval', '--model-dir', modelDir, ...tiny, '--quiet'],
    ]) {
      const { code, out, err } = await cli(...argv);
      expect(code).toBe(0);
      expect(err).toEqual([]);
      expect(out).toEqual([expect.stringMatching(/^test: loss \d+\.\d+, accuracy .* on 8 images/)]);
    }
  });
});

describe('Console', () => {
  it('with quiet shows warnings and results only, and logs everything to its file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'decompose-console-'));
    try {
      const shown: string[] = [];
      const out = new Console(false, (line) => shown.push(line), { quiet: true });
      out.logTo(path.join(dir, 'run.log'));
      out.log('info');
      const bar = out.progress('steps', 2);
      bar.update(1);
      bar.update(2);
      out.warn('warning: careful');
      out.result('the result');
      expect(shown).toEqual(['warning: careful', 'the result']);
      expect(await readFile(path.join(dir, 'run.log'), 'utf8')).toBe('info\nwarning: careful\nthe result\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
