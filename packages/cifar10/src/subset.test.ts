import { join } from 'node:path';
import { CIFAR10_SUBSET_DIR } from '@decompose/cifar10-subset';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cifar10MissingFileError } from './errors.js';
import { readCifar10 } from './reader.js';
import { CIFAR10_DIR_ENV, findBundledSubset } from './subset.js';
import { tempDir } from './test-fixtures.js';

describe('findBundledSubset', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.doUnmock('@decompose/cifar10-subset');
    vi.resetModules();
  });

  it('defaults to the subset of the @decompose/cifar10-subset package, whatever the working directory', async () => {
    vi.stubEnv(CIFAR10_DIR_ENV, '');
    const cwd = process.cwd();
    const elsewhere = await tempDir();
    try {
      process.chdir(elsewhere);
      expect(findBundledSubset()).toBe(CIFAR10_SUBSET_DIR);
    } finally {
      process.chdir(cwd);
    }
    const { train, test } = await readCifar10(findBundledSubset());
    expect([train.count, test.count]).toEqual([5085, 1017]);
  });

  it('prefers DECOMPOSE_CIFAR10_DIR and checks that it exists', async () => {
    const dir = await tempDir();
    vi.stubEnv(CIFAR10_DIR_ENV, dir);
    expect(findBundledSubset()).toBe(dir);
    vi.stubEnv(CIFAR10_DIR_ENV, join(dir, 'missing'));
    expect(() => findBundledSubset()).toThrow(Cifar10MissingFileError);
  });

  it('says how to get data when the data package has no data folder', async () => {
    vi.stubEnv(CIFAR10_DIR_ENV, '');
    const missing = join(await tempDir(), 'data');
    vi.doMock('@decompose/cifar10-subset', () => ({ CIFAR10_SUBSET_DIR: missing }));
    vi.resetModules();
    const fresh = await import('./subset.js');
    const freshErrors = await import('./errors.js');
    expect(() => fresh.findBundledSubset()).toThrow(freshErrors.Cifar10SubsetNotFoundError);
    expect(() => fresh.findBundledSubset()).toThrow(/missing.*DECOMPOSE_CIFAR10_DIR.*downloadCifar10/s);
  });
});
