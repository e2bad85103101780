import { randomBytes } from 'node:crypto';
import path from 'node:path';

/**
 * A temporary name beside `target`, `.<name>.tmp-<pid>-<random>` (same directory, so renaming it onto `target`
 * is atomic), for writing a file or folder in full before it takes its real name.
 */
export function temporaryPath(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
}
