import { randomBytes } from 'node:crypto';
import path from 'node:path';

/** A temporary name beside `target` (same directory, so a rename onto `target` is atomic). */
export function temporaryPath(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}

/** Whether `error` is a Node file-system error with `code` (e.g. `ENOENT`). */
export function isNodeError(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
