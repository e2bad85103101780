import { randomBytes } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
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

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * Creates `dir` and its missing parents, like `mkdir -p`. Node's recursive `mkdir` reports `ENOENT` for a
 * folder it may not create on a read-only disk; this then asks a plain `mkdir` below the deepest existing
 * folder, and throws its error, whose code says why (`EROFS`). A file standing at `dir` itself, which Node reports
 * as `EEXIST`, is reported as `ENOTDIR`, as a file standing at one of its parents is.
 */
export async function createDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`, { cause: error }), {
        code: 'ENOTDIR',
        path: dir,
        syscall: 'mkdir',
      });
    }
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    let missing = path.resolve(dir);
    while (path.dirname(missing) !== missing && !(await exists(path.dirname(missing)))) {
      missing = path.dirname(missing);
    }
    await mkdir(missing);
    throw error;
  }
}
