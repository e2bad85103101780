import { realpathSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cifar10MissingFileError, Cifar10SubsetNotFoundError } from './errors.js';
import { CIFAR10_DIR_ENV, findBundledSubset } from './subset.js';
import { SUBSET_DIR, tempDir } from './test-fixtures.js';

describe('findBundledSubset', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('finds shared/datasets/cifar-10-subset beside an ancestor of this package', () => {
    vi.stubEnv(CIFAR10_DIR_ENV, '');
    const here = fileURLToPath(new URL('.', import.meta.url));
    expect(realpathSync(findBundledSubset(here))).toBe(realpathSync(SUBSET_DIR));
  });

  it('prefers DECOMPOSE_CIFAR10_DIR and checks that it exists', async () => {
    const dir = await tempDir();
    try {
      vi.stubEnv(CIFAR10_DIR_ENV, dir);
      expect(findBundledSubset('/')).toBe(dir);
      vi.stubEnv(CIFAR10_DIR_ENV, join(dir, 'missing'));
      expect(() => findBundledSubset()).toThrow(Cifar10MissingFileError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says how to get data when nothing is found', async () => {
    vi.stubEnv(CIFAR10_DIR_ENV, '');
    const dir = await tempDir();
    try {
      const start = join(dir, 'a', 'b');
      await mkdir(start, { recursive: true });
      const error = (() => {
        try {
          return findBundledSubset(start);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(Cifar10SubsetNotFoundError);
      expect((error as Error).message).toMatch(/DECOMPOSE_CIFAR10_DIR.*downloadCifar10/s);
      expect((error as Cifar10SubsetNotFoundError).searched[0]).toBe(
        join(start, 'shared', 'datasets', 'cifar-10-subset'),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
