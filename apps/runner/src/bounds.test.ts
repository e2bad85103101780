import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBundledSubset } from '@decompose/cifar10';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli } from './program.js';

/** Runs the program in-process, capturing what it prints. */
async function cli(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

const HUGE = '3000000000000';
/** Absurd values for a field taking whole numbers, and for one taking any number in a range. */
const WHOLE = [HUGE, '-1', '2.5'];
const REAL = ['1e9', '-1'];

const dataFlags = {
  '--limit-train': WHOLE,
  '--limit-test': WHOLE,
  // A share of each class: both ends open (a test set of none or of all the images is no split).
  '--test-fraction': ['0', '1', '-0.5', '1.5'],
  '--split-seed': WHOLE,
};
const sgdFlags = {
  '--batch': WHOLE,
  '--lr': REAL,
  '--momentum': REAL,
  '--weight-decay': REAL,
  '--milestones': WHOLE,
  '--gamma': REAL,
  '--warmup-epochs': REAL,
  '--label-smoothing': REAL,
  '--workers': WHOLE,
  '--seed': WHOLE,
};

/**
 * Every numeric flag of every command: the arguments the command needs besides it (`{out}` stands for a fresh
 * output folder) and the absurd values to feed it.
 */
const commands: { command: string; args: string[]; flags: Record<string, string[]> }[] = [
  {
    command: 'train',
    args: ['--out', '{out}'],
    flags: {
      ...dataFlags,
      ...sgdFlags,
      '--epochs': WHOLE,
      '--hold-out': WHOLE,
    },
  },
  // Given alone, --hold-out-seed is refused for want of --hold-out.
  { command: 'train', args: ['--hold-out', '10', '--out', '{out}'], flags: { '--hold-out-seed': WHOLE } },
  { command: 'eval', args: ['--model-dir', '{out}'], flags: { ...dataFlags, '--batch': WHOLE } },
  { command: 'inspect', args: [], flags: { '--batch': WHOLE, '--repeats': WHOLE } },
  {
    command: 'compress',
    args: ['--model-dir', 'm', '--strategy', 'svd', '--out', '{out}'],
    flags: {
      ...dataFlags,
      ...sgdFlags,
      '--ratio': REAL,
      '--fine-tune-epochs': WHOLE,
      '--bn-images': WHOLE,
    },
  },
  { command: 'bench', args: [], flags: { '--batch': WHOLE, '--steps': WHOLE, '--workers': WHOLE } },
  {
    command: 'sensitivity',
    args: ['--model-dir', 'm', '--strategy', 'svd', '--out', '{out}'],
    flags: {
      ...dataFlags,
      '--ratios': REAL,
      '--calibration': WHOLE,
      '--fine-tune-steps': WHOLE,
      '--fine-tune-lr': REAL,
      '--workers': WHOLE,
      '--batch': WHOLE,
      '--seed': WHOLE,
    },
  },
  {
    command: 'web',
    args: ['--original', 'a', '--compressed', 'b', '--serve', '--out', '{out}'],
    flags: { '--samples': WHOLE, '--port': WHOLE },
  },
];

const cases = commands.flatMap(({ command, args, flags }) =>
  Object.entries(flags).flatMap(([flag, values]) => values.map((value) => ({ command, args, flag, value }))),
);

/** `<what> must be [a whole number] in [a, b]` (or with open ends), as the schemas word a range. */
const RANGE = /; [\w ]+ must be (a whole number )?in [[(]-?[\d.]+, [\d.]+[\])]/;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'decompose-bounds-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('numeric bounds', () => {
  it.each(cases)(
    '$command $flag $value: exit 2, one line naming the flag and its range, nothing written',
    async ({ command, args, flag, value }) => {
      const out = path.join(dir, `${command}${flag}${value}`);
      const { code, err } = await cli(command, ...args.map((a) => (a === '{out}' ? out : a)), flag, value);
      expect(code).toBe(2);
      expect(err).toHaveLength(1);
      expect(err[0]).toMatch(
        new RegExp(`^error: Invalid configuration: ${flag}: got [^;\\n]+${RANGE.source}`),
      );
      expect(existsSync(out)).toBe(false);
    },
  );

  it.each<{ field: string; fields?: Record<string, unknown>; select?: Record<string, unknown> }>([
    { field: 'fineTune.batch', fields: { fineTune: { batch: Number(HUGE) } } },
    { field: 'fineTune.epochs', fields: { fineTune: { epochs: 2.5 } } },
    { field: 'fineTune.bnImages', fields: { fineTune: { bnImages: -1 } } },
    { field: 'baseline.lr', fields: { baseline: { lr: 1e9 } } },
    { field: 'baseline.workers', fields: { baseline: { workers: 1000 } } },
    { field: 'measure.steps', fields: { measure: { steps: Number(HUGE) } } },
    { field: 'limitTrain', fields: { limitTrain: -1 } },
    { field: 'testFraction', fields: { testFraction: 1 } },
    { field: 'splitSeed', fields: { splitSeed: 2.5 } },
    { field: 'arms.0.select.calibration', select: { calibration: Number(HUGE) } },
    { field: 'arms.0.select.fineTuneSteps', select: { fineTuneSteps: 2.5 } },
  ])(
    'compare: $field out of range in the config file: exit 2, one line, nothing written',
    async ({ field, fields, select }) => {
      const reportDir = path.join(dir, `compare-${field}`);
      const arm = { name: 'a', strategy: 'svd', options: { ratio: 0.5 } };
      const arms = [select === undefined ? arm : { ...arm, select: { budget: 'params:0.3', ...select } }];
      const file = path.join(dir, `compare-${field}.yaml`);
      await writeFile(file, stringify({ ...fields, reportDir, arms }));
      const { code, err } = await cli('compare', '--config', file);
      expect(code).toBe(2);
      expect(err).toHaveLength(1);
      expect(err[0]).toMatch(
        new RegExp(`^error: Invalid configuration: '${field}' in .*: got [^;\\n]+${RANGE.source}`),
      );
      expect(existsSync(reportDir)).toBe(false);
    },
  );
});

describe('bounds that depend on the data', () => {
  const subset = findBundledSubset();
  const tiny = ['--data', subset, '--limit-train', '16', '--limit-test', '8', '--workers', '0'];

  it('refuses a training batch larger than the training images before training', async () => {
    const out = path.join(dir, 'big-batch');
    const { code, err } = await cli('train', ...tiny, '--batch', '32', '--epochs', '1', '--out', out);
    expect(code).toBe(2);
    expect(err).toEqual([
      'error: Invalid configuration: --batch: got 32; must be a whole number in [1, 16] (a training batch holds at most the 16 training images)',
    ]);
    expect(await readdir(out)).toEqual(['train.log']);
  });

  it('refuses a hold-out of all the training images before training', async () => {
    const out = path.join(dir, 'big-hold-out');
    const { code, err } = await cli('train', ...tiny, '--batch', '8', '--hold-out', '16', '--out', out);
    expect(code).toBe(2);
    expect(err).toEqual([
      'error: --hold-out: got 16; must be a whole number in [1, 15] (the calibration split must be smaller than the 16 training images)',
    ]);
    expect(await readdir(out)).toEqual(['train.log']);
  });

  it('refuses a fine-tune batch larger than the training images before the surgery', async () => {
    const out = path.join(dir, 'big-fine-tune-batch');
    const { code, err } = await cli(
      'compress',
      ...['--model-dir', path.join(dir, 'no-model'), '--strategy', 'svd', '--fine-tune-epochs', '1'],
      ...[...tiny, '--batch', '32', '--out', out],
    );
    expect(code).toBe(2);
    expect(err).toEqual([
      expect.stringMatching(
        /^error: Invalid configuration: --batch: got 32; must be a whole number in \[1, 16\]/,
      ),
    ]);
    expect(existsSync(out)).toBe(false);
  });
});
