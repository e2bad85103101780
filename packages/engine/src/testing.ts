// Helpers for tests of file-system failures that happen for real: a small disk that fills up. Exported as
// `@decompose/engine/testing`.

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A small tmpfs mounted on a fresh folder: writing more than its size fails with `ENOSPC`. */
export interface SmallDisk {
  /** The mounted folder. */
  dir: string;
  /** Grows or shrinks the disk to `bytes` (rounded up to whole pages), keeping its files. */
  resize(bytes: number): Promise<void>;
  /** Unmounts the disk and removes its folder. */
  unmount(): Promise<void>;
}

async function mount(args: string[], dir: string): Promise<void> {
  try {
    await run('mount', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim() ?? String(error);
    throw new Error(
      `Cannot mount a tmpfs on ${dir} (mount ${args.join(' ')}: ${stderr}). This test fills a real disk: run it ` +
        'as root, or in a container with CAP_SYS_ADMIN.',
    );
  }
}

/**
 * Mounts a tmpfs of `bytes` on a new temporary folder, so a test can fill a disk for real (ENOSPC) instead of
 * faking the error; with `readOnly`, every write to it fails with `EROFS`, for root too. Needs root
 * (CAP_SYS_ADMIN); without it, throws an error that says so.
 */
export async function mountSmallDisk(
  bytes: number,
  options: { readOnly?: boolean } = {},
): Promise<SmallDisk> {
  const dir = await mkdtemp(path.join(tmpdir(), 'decompose-small-disk-'));
  const flags = `size=${bytes},mode=0755${options.readOnly ? ',ro' : ''}`;
  try {
    await mount(['-t', 'tmpfs', '-o', flags, 'tmpfs', dir], dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    resize: (size) => mount(['-o', `remount,size=${size}`, dir], dir),
    unmount: async () => {
      await run('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
