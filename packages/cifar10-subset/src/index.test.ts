import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CIFAR10_SUBSET_DIR, CIFAR10_SUBSET_IMAGES_PER_FILE, CIFAR10_SUBSET_MD5 } from './index.js';

const RECORD_BYTES = 3073;

describe('the bundled CIFAR-10 subset', () => {
  it('holds every file with the md5 its MD5SUMS lists', () => {
    const listed = readFileSync(join(CIFAR10_SUBSET_DIR, 'MD5SUMS'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/))
      .map(([md5, file]) => [file, md5]);
    expect(Object.fromEntries(listed)).toEqual(CIFAR10_SUBSET_MD5);
    for (const [file, md5] of Object.entries(CIFAR10_SUBSET_MD5)) {
      const bytes = readFileSync(join(CIFAR10_SUBSET_DIR, file));
      expect(bytes.length, file).toBe(CIFAR10_SUBSET_IMAGES_PER_FILE * RECORD_BYTES);
      expect(createHash('md5').update(bytes).digest('hex'), file).toBe(md5);
    }
  });

  it('names the ten classes and keeps its README', () => {
    const classes = readFileSync(join(CIFAR10_SUBSET_DIR, 'batches.meta.txt'), 'utf8').trim().split('\n');
    expect(classes).toHaveLength(10);
    expect(classes[0]).toBe('airplane');
    expect(statSync(join(CIFAR10_SUBSET_DIR, 'README.md')).isFile()).toBe(true);
  });
});
