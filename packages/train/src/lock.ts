import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { RunLockedError } from './errors.js';
import { isNodeError } from './files.js';

/** The lock file {@link lockRunDirectory} creates in the directory it guards. */
export const LOCK_FILE = 'run.lock';

const ownerSchema = z.object({
  pid: z.number().int(),
  host: z.string(),
  started: z.string(),
  purpose: z.string(),
});
/** Who holds a run directory's lock: the lock file's contents. */
export type LockOwner = z.output<typeof ownerSchema>;

/** A held lock; {@link RunLock.release} removes the lock file (once; later calls do nothing). */
export interface RunLock {
  readonly file: string;
  readonly owner: LockOwner;
  /** Set when the lock file of a process that no longer runs was taken over: that owner. */
  readonly tookOverFrom: LockOwner | null;
  release(): Promise<void>;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return isNodeError(error, 'EPERM');
  }
}

async function readOwner(file: string): Promise<LockOwner | null> {
  try {
    const parsed = ownerSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch (error) {
    if (isNodeError(error, 'ENOENT')) return null;
    // Half-written or hand-edited: nobody can be shown to hold it, so it counts as stale.
    if (error instanceof SyntaxError) return null;
    throw error;
  }
}

/**
 * Makes `dir` this process's own until {@link RunLock.release}: creates `dir/run.lock` holding this process's
 * pid, host, start time and `purpose`, failing if another live process holds it. A lock left by a process that
 * no longer runs on this host (killed, crashed) is taken over. The lock file is created exclusively (`wx`), so
 * two processes racing for it cannot both win. Hand-written rather than proper-lockfile, whose staleness is an
 * mtime heartbeat and which cannot tell the user which process holds the directory.
 *
 * @param purpose - what the owner does, for the other process's error message (e.g. `decompose train`).
 * @throws RunLockedError naming the live owner (pid, host, start) and what to do.
 */
export async function lockRunDirectory(dir: string, purpose: string): Promise<RunLock> {
  const file = path.join(dir, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString(), purpose };
  let tookOverFrom: LockOwner | null = null;
  for (;;) {
    try {
      await writeFile(file, `${JSON.stringify(owner)}\n`, { flag: 'wx' });
      break;
    } catch (error) {
      if (!isNodeError(error, 'EEXIST')) throw error;
    }
    const holder = await readOwner(file);
    if (holder !== null && (holder.host !== owner.host || isRunning(holder.pid))) {
      throw new RunLockedError(dir, file, holder);
    }
    tookOverFrom = holder;
    await rm(file, { force: true });
  }
  let released = false;
  return {
    file,
    owner,
    tookOverFrom,
    release: async () => {
      if (released) return;
      released = true;
      await rm(file, { force: true });
    },
  };
}
