import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Cifar10MissingFileError, Cifar10SubsetNotFoundError } from './errors.js';

/** Environment variable that, when set, names the CIFAR-10 folder {@link findBundledSubset} returns. */
export const CIFAR10_DIR_ENV = 'DECOMPOSE_CIFAR10_DIR';

/** Where the subset lives relative to the folder the repository was cloned into. */
const SUBSET_PATH = join('shared', 'datasets', 'cifar-10-subset');

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Finds the bundled CIFAR-10 subset (5,085 train + 1,017 test images in the official binary layout).
 * `DECOMPOSE_CIFAR10_DIR`, if set, wins; otherwise each folder from `startDir` up to the root is checked
 * for a `shared/datasets/cifar-10-subset` inside it (the repository is cloned with `shared/` beside it).
 *
 * @param startDir - where the upward search starts (default `process.cwd()`).
 * @returns the absolute path of the folder; pass it to {@link readCifar10}.
 * @throws Cifar10MissingFileError if `DECOMPOSE_CIFAR10_DIR` names no folder;
 *   Cifar10SubsetNotFoundError if no ancestor has the subset.
 */
export function findBundledSubset(startDir: string = process.cwd()): string {
  const fromEnv = process.env[CIFAR10_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const dir = resolve(fromEnv);
    if (!isDirectory(dir)) throw new Cifar10MissingFileError(dir, 'folder');
    return dir;
  }
  const searched: string[] = [];
  let dir = resolve(startDir);
  for (;;) {
    const candidate = join(dir, SUBSET_PATH);
    searched.push(candidate);
    if (isDirectory(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Cifar10SubsetNotFoundError(resolve(startDir), searched);
    dir = parent;
  }
}
