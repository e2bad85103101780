import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { findBundledSubset } from '@decompose/cifar10';
import { LOCK_FILE, readCheckpoint } from '@decompose/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_INTERRUPTED } from './errors.js';
import { runCli } from './program.js';

const tiny = [
  ...['--data', findBundledSubset(), '--limit-train', '16', '--limit-test', '8', '--batch', '8'],
  ...['--workers', '0', '--no-augment'],
];

async function cli(
  argv: string[],
  onLine: (line: string) => void = () => {},
): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const print = (line: string) => {
    out.push(line);
    onLine(line);
  };
  const code = await runCli(argv, { print, printError: (l) => err.push(l), tty: false });
  return { code, out, err };
}

describe('decompose train and its output folder', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-train-lock-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('refuses a second train into the same --out while the first runs, and writes nothing', async () => {
    const out = path.join(dir, 'busy');
    await mkdir(out);
    // This process is alive: its lock is held.
    const owner = { pid: process.pid, host: hostname(), started: 'now', purpose: 'decompose train' };
    await writeFile(path.join(out, LOCK_FILE), JSON.stringify(owner));
    const { code, err } = await cli(['train', ...tiny, '--epochs', '1', '--out', out]);
    expect(err).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: ${out} is in use by decompose train \\(pid ${process.pid} .*use another output folder`,
        ),
      ),
    ]);
    expect(code).toBe(2);
    expect(existsSync(path.join(out, 'train.log'))).toBe(false);
    expect(existsSync(path.join(out, 'checkpoints'))).toBe(false);
    expect(JSON.parse(await readFile(path.join(out, LOCK_FILE), 'utf8'))).toEqual(owner);
  });

  it('two runs started together: one trains, the other is refused', async () => {
    const out = path.join(dir, 'race');
    const [a, b] = await Promise.all([
      cli(['train', ...tiny, '--epochs', '1', '--out', out]),
      cli(['train', ...tiny, '--epochs', '1', '--out', out]),
    ]);
    expect([a.code, b.code].sort()).toEqual([0, 2]);
    expect([...a.err, ...b.err]).toEqual([expect.stringMatching(/is in use by decompose train/)]);
    expect(existsSync(path.join(out, LOCK_FILE))).toBe(false);
  });

  it('Ctrl-C stops training, keeps the last checkpoint, says how to resume, and the resume finishes', async () => {
    const out = path.join(dir, 'interrupted');
    const args = ['train', ...tiny, '--epochs', '4', '--out', out];
    let signalled = false;
    const stopped = await cli(args, (line) => {
      if (!signalled && line.startsWith('epoch 1/4: train loss')) {
        signalled = true;
        process.kill(process.pid, 'SIGINT');
      }
    });
    expect(stopped.err).toHaveLength(1);
    expect(stopped.err[0]).toMatch(
      /^error: Training interrupted during epoch \d; the checkpoint of epoch \d is kept in .*run the same decompose train command with --resume added/,
    );
    expect(stopped.code).toBe(EXIT_INTERRUPTED);
    const kept = await readCheckpoint(path.join(out, 'checkpoints'));
    expect(kept?.epoch).toBeGreaterThanOrEqual(1);
    expect(kept?.epoch).toBeLessThan(4);
    expect(existsSync(path.join(out, 'summary.json'))).toBe(false);
    expect(existsSync(path.join(out, LOCK_FILE))).toBe(false);

    const resumed = await cli([...args, '--resume']);
    expect(resumed.err).toEqual([]);
    expect(resumed.code).toBe(0);
    const summary = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.epochs).toHaveLength(4);
    expect(summary.resumedFrom).toBe(kept?.epoch);
  });
});
