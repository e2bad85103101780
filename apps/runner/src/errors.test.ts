// The catalogue of user mistakes and environment failures that must end in one `error:` line naming the input
// and the fix (exit code 2), with nothing written or overwritten, while a bug keeps its stack (exit code 1).
// The file-system failures are real: a tmpfs that fills up (ENOSPC), a read-only tmpfs (EROFS), and a CLI run
// as an unprivileged user on a folder it does not own (EACCES; root ignores permission bits).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findBundledSubset } from '@decompose/cifar10';
import { StrategyError } from '@decompose/core';
import { initEngine, MODEL_JSON_FILE, WEIGHTS_FILE } from '@decompose/engine';
import { mountSmallDisk } from '@decompose/engine/testing';
import { saveModel } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import { InvalidTrainingOptionError, LOCK_FILE } from '@decompose/train';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, reportError } from './errors.js';
import { runCli } from './program.js';
import { sourceNodeArgs } from './test-cli.js';

const subset = findBundledSubset();
// A tiny run: 16 training images in batches of 8, 8 test images, no BatchNorm re-estimation.
const tiny = ['--data', subset, '--limit-train', '16', '--limit-test', '8', '--batch', '8'];
const compressFlags = [...tiny, '--strategy', 'svd', '--ratio', '0.5', '--bn-images', '0'];

/** Runs the program in-process, capturing what it prints. */
async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

let dir: string;
/** A saved ResNet-20 (untrained: its weights are what compress reads). */
let modelDir: string;
beforeAll(async () => {
  await initEngine();
  // Traversable by the unprivileged user of the EACCES test.
  dir = await mkdtemp(path.join(tmpdir(), 'decompose-errors-'));
  await chmod(dir, 0o755);
  modelDir = path.join(dir, 'model');
  const model = createCifarResNet({ arch: 'resnet20' });
  await saveModel(model, modelDir);
  model.dispose();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('typed errors and bugs', () => {
  class ValueError extends Error {
    override readonly name = 'ValueError';
  }
  class PluginRankError extends StrategyError {
    override readonly name = 'PluginRankError';
  }

  it.each([
    ['a tfjs-style ValueError', new ValueError('Unknown layer: Foo')],
    ['a TypeError', new TypeError("Cannot read properties of undefined (reading '0')")],
    ['a plain Error', new Error('model.save did not hand over the model artifacts.')],
  ])('treats %s as a bug: its stack, exit code 1', (_kind, error) => {
    const lines: string[] = [];
    expect(reportError(error, (line) => lines.push(line))).toBe(1);
    expect(lines).toEqual([error.stack]);
  });

  it.each([
    ['the runner', new ConfigError(['--lr: got 0, expected a number > 0'])],
    ['a package (train)', new InvalidTrainingOptionError('epochs', 'must be a positive integer, got 0')],
    ['a strategy plugin (StrategyError)', new PluginRankError('rank 9 exceeds 8 for layer conv: lower it')],
  ])('treats a typed error of %s as a user error: its message, exit code 2', (_kind, error) => {
    const lines: string[] = [];
    expect(reportError(error, (line) => lines.push(line))).toBe(2);
    expect(lines).toEqual([`error: ${error.message}`]);
  });
});

describe('the catalogue of user mistakes and failing disks', () => {
  it('--model-dir that is a file: names it and says to point at a folder', async () => {
    const file = path.join(dir, 'model.txt');
    await writeFile(file, 'not a model');
    const out = path.join(dir, 'out-enotdir');
    const { code, err } = await cli('compress', ...compressFlags, '--model-dir', file, '--out', out);
    expect(err).toEqual([
      `error: Cannot load the model from ${file}: a file stands where a folder is expected (ENOTDIR). ` +
        'Point at a folder, not at a file (or move the file out of the way).',
    ]);
    expect(code).toBe(2);
    expect(existsSync(out)).toBe(false);
    expect(await readFile(file, 'utf8')).toBe('not a model');
  });

  it('weights of the right length holding NaN: refused up front, naming the layer and the fix', async () => {
    const damaged = path.join(dir, 'damaged');
    await mkdir(damaged);
    const json = await readFile(path.join(modelDir, MODEL_JSON_FILE), 'utf8');
    await writeFile(path.join(damaged, MODEL_JSON_FILE), json);
    const weights = await readFile(path.join(modelDir, WEIGHTS_FILE));
    // The byte offset of one convolution's kernel in weights.bin (float32 weights, in manifest order).
    const specs = (JSON.parse(json) as tf.io.ModelJSON).weightsManifest.flatMap((group) => group.weights);
    const name = 'stage2.block1.conv1/kernel';
    const index = specs.findIndex((spec) => spec.name === name);
    expect(index).toBeGreaterThan(0);
    const offset = specs
      .slice(0, index)
      .reduce((bytes, spec) => bytes + 4 * tf.util.sizeFromShape(spec.shape), 0);
    weights.writeFloatLE(Number.NaN, offset + 4 * 7);
    await writeFile(path.join(damaged, WEIGHTS_FILE), weights);

    const out = path.join(dir, 'out-nan');
    const tensors = tf.memory().numTensors;
    const { code, err } = await cli('compress', ...compressFlags, '--model-dir', damaged, '--out', out);
    expect(err).toEqual([
      `error: Layer 'stage2.block1.conv1' holds non-finite weights: 1 value of '${name}' is NaN or infinite ` +
        '(the first, at index 7, is NaN). The weights file is damaged or the model was saved after training ' +
        'diverged: retrain the model, or re-export it from a good checkpoint.',
    ]);
    expect(code).toBe(2);
    expect(existsSync(out)).toBe(false);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('an output folder owned by another user (EACCES): names its first file and the fix, writes nothing', async () => {
    const out = path.join(dir, 'not-yours');
    await mkdir(out);
    await chmod(out, 0o555);
    const { code, stderr } = await runSourceCliUnprivileged([
      'train',
      ...tiny,
      '--epochs',
      '1',
      '--out',
      out,
    ]);
    expect(stderr.trim()).toBe(
      `error: Cannot write ${path.join(out, LOCK_FILE)}: permission denied (EACCES). Choose a folder you may ` +
        'write to (and read), or ask its owner to change its permissions (chown/chmod).',
    );
    expect(code).toBe(2);
    expect(await readdir(out)).toEqual([]);
  });

  it.each([
    ['train', ['--epochs', '1']],
    ['compress', ['--strategy', 'svd', '--ratio', '0.5', '--bn-images', '0', '--model-dir', 'MODEL']],
  ])(
    'an --out that is a file (%s): names it and the fix, leaves the file as it was',
    async (command, flags) => {
      const file = path.join(dir, `${command}-out.txt`);
      await writeFile(file, 'keep me');
      const args = flags.map((flag) => (flag === 'MODEL' ? modelDir : flag));
      const { code, err } = await cli(command, ...tiny, ...args, '--out', file);
      expect(err).toEqual([
        `error: Cannot write ${file}: a file stands where a folder is expected (ENOTDIR). ` +
          'Point at a folder, not at a file (or move the file out of the way).',
      ]);
      expect(code).toBe(2);
      expect(await readFile(file, 'utf8')).toBe('keep me');
    },
  );

  it('a read-only output folder (EROFS): names it and the fix, writes nothing', async () => {
    const disk = await mountSmallDisk(1024 * 1024, { readOnly: true });
    try {
      const out = path.join(disk.dir, 'compressed');
      const { code, err } = await cli('compress', ...compressFlags, '--model-dir', modelDir, '--out', out);
      expect(err).toEqual([
        `error: Cannot write ${out}: the file system is read-only (EROFS). Choose a folder on a writable disk.`,
      ]);
      expect(code).toBe(2);
      expect(await readdir(disk.dir)).toEqual([]);
    } finally {
      await disk.unmount();
    }
  });

  it('a full disk during training (ENOSPC): typed error, the last checkpoint intact and resumable', async () => {
    // A ResNet-20 checkpoint (weights and momentum) takes about 2.2 MB: the first fits, the second does not.
    const disk = await mountSmallDisk(3 * 1024 * 1024);
    try {
      const out = path.join(disk.dir, 'run');
      const args = ['train', ...tiny, '--epochs', '2', '--out', out];
      const full = await cli(...args);
      const checkpoints = path.join(out, 'checkpoints');
      expect(full.err).toEqual([
        `error: Cannot write a checkpoint to ${checkpoints}: no space is left on the device (ENOSPC). Free some ` +
          'space, or choose a folder on another disk, and run again. The last good checkpoint, ' +
          `${path.join(checkpoints, 'epoch-0001')}, is intact: resume from it once this is fixed.`,
      ]);
      expect(full.code).toBe(2);
      // No model or summary a later run would take for finished, and no half-written checkpoint.
      expect((await readdir(out)).sort()).toEqual(['checkpoints', 'hold-out.json', 'train.log']);
      expect((await readdir(checkpoints)).sort()).toEqual(['epoch-0001', 'metrics.jsonl']);

      await disk.resize(16 * 1024 * 1024);
      const resumed = await cli(...args, '--resume');
      expect(resumed.err).toEqual([]);
      expect(resumed.code).toBe(0);
      const summary = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8')) as {
        resumedFrom: number;
        epochs: unknown[];
      };
      expect(summary).toMatchObject({ resumedFrom: 1 });
      expect(summary.epochs).toHaveLength(2);
    } finally {
      await disk.unmount();
    }
  });

  it('a full disk during compress (ENOSPC): typed error, no model or summary left, the earlier ones kept', async () => {
    // The compressed model (about 0.6 MB of weights) cannot fit on 256 KB.
    const disk = await mountSmallDisk(256 * 1024);
    try {
      const out = path.join(disk.dir, 'compressed');
      await mkdir(out);
      const earlier = '{ "from": "an earlier run" }\n';
      await writeFile(path.join(out, 'summary.json'), earlier);
      const { code, err } = await cli('compress', ...compressFlags, '--model-dir', modelDir, '--out', out);
      const saved = path.join(out, 'model');
      expect(err).toEqual([
        `error: Cannot save the model to ${saved}: no space is left on the device (ENOSPC). Free some space, or ` +
          'choose a folder on another disk, and run again. A model saved there before is left as it was.',
      ]);
      expect(code).toBe(2);
      expect(await readdir(out)).toEqual(['summary.json']);
      expect(await readFile(path.join(out, 'summary.json'), 'utf8')).toBe(earlier);
    } finally {
      await disk.unmount();
    }
  });
});

const execFileAsync = promisify(execFile);
/**
 * Runs the CLI from its sources in a child process as a user without privileges: as `nobody` when the tests run
 * as root (who ignores permission bits), else as the current user. Returns its exit code and stderr.
 */
async function runSourceCliUnprivileged(args: string[]): Promise<{ code: number; stderr: string }> {
  // Transpile every module once as the current user: `nobody` may not write the hooks' cache.
  await execFileAsync(process.execPath, [...sourceNodeArgs, '--help']);
  const asRoot = process.getuid?.() === 0;
  const [command, ...prefix] = asRoot
    ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath]
    : [process.execPath];
  try {
    const { stderr } = await execFileAsync(command!, [...prefix, ...sourceNodeArgs, ...args], {
      env: { ...process.env, CI: 'true' },
    });
    return { code: 0, stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stderr?: string };
    if (typeof failed.code !== 'number') {
      throw new Error(
        `Cannot run the CLI as an unprivileged user (${String(failed.code)}): this test needs setpriv (util-linux) when run as root.`,
      );
    }
    return { code: failed.code, stderr: failed.stderr ?? '' };
  }
}
