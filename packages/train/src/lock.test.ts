import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunLockedError } from './errors.js';
import { LOCK_FILE, lockRunDirectory } from './lock.js';
import { temporaryDir } from './test-fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function runDir(): Promise<string> {
  const { dir, remove } = await temporaryDir();
  cleanups.push(remove);
  return dir;
}

/** The pid of a process that has exited (so no process runs under it, barring reuse). */
function finishedPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

describe('lockRunDirectory', () => {
  it('records this process and refuses a second holder while it runs, naming the owner', async () => {
    const dir = await runDir();
    const lock = await lockRunDirectory(dir, 'decompose train');
    const written = JSON.parse(await readFile(path.join(dir, LOCK_FILE), 'utf8'));
    expect(written).toMatchObject({ pid: process.pid, host: hostname(), purpose: 'decompose train' });
    expect(lock.tookOverFrom).toBeNull();

    const second = await lockRunDirectory(dir, 'decompose train').catch((e: unknown) => e);
    expect(second).toBeInstanceOf(RunLockedError);
    expect((second as Error).message).toContain(`in use by decompose train (pid ${process.pid}`);
    expect((second as Error).message).toContain(`delete ${path.join(dir, LOCK_FILE)}`);

    await lock.release();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    const again = await lockRunDirectory(dir, 'decompose train');
    await again.release();
  });

  it('lets exactly one of two racing callers win', async () => {
    const dir = await runDir();
    const results = await Promise.allSettled([
      lockRunDirectory(dir, 'first'),
      lockRunDirectory(dir, 'second'),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect((rejected as PromiseRejectedResult).reason).toBeInstanceOf(RunLockedError);
  });

  it('takes over the lock of a process that no longer runs, and of an unreadable lock file', async () => {
    const dir = await runDir();
    const file = path.join(dir, LOCK_FILE);
    const dead = { pid: finishedPid(), host: hostname(), started: '2026-01-01T00:00:00.000Z', purpose: 'x' };
    await writeFile(file, JSON.stringify(dead));
    const lock = await lockRunDirectory(dir, 'decompose train');
    expect(lock.tookOverFrom).toEqual(dead);
    await lock.release();

    await writeFile(file, '{"pid": 12');
    const overGarbage = await lockRunDirectory(dir, 'decompose train');
    expect(overGarbage.tookOverFrom).toBeNull();
    await overGarbage.release();
  });

  it('treats a lock held on another host as held', async () => {
    const dir = await runDir();
    const remote = { pid: 1, host: `not-${hostname()}`, started: '2026-01-01T00:00:00.000Z', purpose: 'x' };
    await writeFile(path.join(dir, LOCK_FILE), JSON.stringify(remote));
    await expect(lockRunDirectory(dir, 'decompose train')).rejects.toThrow(/pid 1 on not-/);
  });
});
