import { fileURLToPath } from 'node:url';

/**
 * Absolute path of the bundled CIFAR-10 subset: a folder in the official binary layout
 * (`data_batch_1.bin` … `data_batch_5.bin` with 1,017 images each, `test_batch.bin` with 1,017,
 * `batches.meta.txt`, `README.md`, `MD5SUMS`). Read it with `readCifar10` from `@decompose/cifar10`.
 *
 * Resolved from this module's own location, so it holds wherever the package is installed or the
 * repository is cloned (`src/` and `dist/` are both one level below the package root).
 */
export const CIFAR10_SUBSET_DIR: string = fileURLToPath(new URL('../data/', import.meta.url));

/** Images in each of the five training files and in the test file of the subset. */
export const CIFAR10_SUBSET_IMAGES_PER_FILE = 1017;

/** The md5 digest of each file of the subset, as listed in its `MD5SUMS`. */
export const CIFAR10_SUBSET_MD5: Readonly<Record<string, string>> = {
  'data_batch_1.bin': '62f96788be656b9613f40150fe2dda66',
  'data_batch_2.bin': 'dba81ae79c6bb902054ffa93f0a5ba49',
  'data_batch_3.bin': 'ce8b36aa75ea547b647c849f5a3faac8',
  'data_batch_4.bin': '9548927dc715700d733c40695d94a590',
  'data_batch_5.bin': '76194cdcb36d1a469e54752268defd4a',
  'test_batch.bin': '6ac134a1c8e0e152e254c10d0fc92b6f',
};
