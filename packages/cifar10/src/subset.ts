import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CIFAR10_SUBSET_DIR } from '@decompose/cifar10-subset';
import { Cifar10MissingFileError, Cifar10SubsetNotFoundError } from './errors.js';

/** Environment variable that, when set, names the CIFAR-10 folder {@link findBundledSubset} returns. */
export const CIFAR10_DIR_ENV = 'DECOMPOSE_CIFAR10_DIR';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The default CIFAR-10 folder: `DECOMPOSE_CIFAR10_DIR` if set, else the subset bundled in the
 * `@decompose/cifar10-subset` package (5,085 train + 1,017 test images in the official binary layout),
 * found by module resolution, so it is there wherever the repository is cloned or the package installed.
 *
 * @returns the absolute path of the folder; pass it to {@link readCifar10}.
 * @throws Cifar10MissingFileError if `DECOMPOSE_CIFAR10_DIR` names no folder;
 *   Cifar10SubsetNotFoundError if the data package was installed without its data folder.
 */
export function findBundledSubset(): string {
  const fromEnv = process.env[CIFAR10_DIR_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const dir = resolve(fromEnv);
    if (!isDirectory(dir)) throw new Cifar10MissingFileError(dir, 'folder');
    return dir;
  }
  if (!isDirectory(CIFAR10_SUBSET_DIR)) throw new Cifar10SubsetNotFoundError(CIFAR10_SUBSET_DIR);
  return CIFAR10_SUBSET_DIR;
}
