// Helpers for this package's tests only (excluded from the build).
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CIFAR10_SUBSET_DIR } from '@decompose/cifar10-subset';
import { CIFAR10_CLASS_NAMES, META_FILE, RECORD_BYTES, TEST_FILE, TRAIN_FILES } from './format.js';

/** The bundled subset (the @decompose/cifar10-subset package). */
export const SUBSET_DIR = CIFAR10_SUBSET_DIR;

/** A new empty temporary folder. */
export function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'cifar10-test-'));
}

/** `count` binary records: record i has label `i % 10` and pixel byte j equal to `(i * 7 + j) & 255`. */
export function makeRecords(count: number, firstIndex = 0): Uint8Array {
  const bytes = new Uint8Array(count * RECORD_BYTES);
  for (let r = 0; r < count; r++) {
    const i = firstIndex + r;
    bytes[r * RECORD_BYTES] = i % 10;
    for (let j = 1; j < RECORD_BYTES; j++) bytes[r * RECORD_BYTES + j] = (i * 7 + j - 1) & 255;
  }
  return bytes;
}

/** Writes a complete folder in the binary layout with `perFile` generated records in each batch file. */
export async function writeFixtureDir(dir: string, perFile: number): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [index, file] of [...TRAIN_FILES, TEST_FILE].entries()) {
    await writeFile(join(dir, file), makeRecords(perFile, index * perFile));
  }
  await writeFile(join(dir, META_FILE), `${CIFAR10_CLASS_NAMES.join('\n')}\n\n`);
  return dir;
}
