import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** A temporary name beside `target` (same directory, so a rename onto `target` is atomic). */
export function temporaryPath(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

/** Writes `data` to `file` through a synced temporary file and a rename, so `file` is never half-written. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const temp = temporaryPath(file);
  try {
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Whether `error` is a Node file-system error with `code` (e.g. `ENOENT`). */
export function isNodeError(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
