#!/usr/bin/env node
// Fills a folder for the page with the demo models (a seeded ResNet-20 and its compressed copy):
//   node dist/cli.js <dir> [--seed 0] [--samples 32] [--test-batch path/to/test_batch.bin]
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findBundledSubset, TEST_FILE, TRAIN_FILES } from '@decompose/cifar10';
import { decodeBatch } from '@decompose/cifar10/browser';
import { initEngine } from '@decompose/engine';
import { createDemoModels } from './demo.js';
import { prepareSite } from './prepare.js';

/** Training images the demo head's class means are computed from. */
const CALIBRATION_IMAGES = 256;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: 'string', default: '0' },
    samples: { type: 'string', default: '32' },
    'test-batch': { type: 'string' },
  },
});
const [dir] = positionals;
if (dir === undefined) {
  console.error('usage: decompose-web-prepare <dir> [--seed 0] [--samples 32] [--test-batch file]');
  process.exit(2);
}
const engine = await initEngine();
const subset = findBundledSubset();
const calibration = decodeBatch(await readFile(join(subset, TRAIN_FILES[0])), { limit: CALIBRATION_IMAGES });
const { original, compressed, replacements } = createDemoModels({ seed: Number(values.seed), calibration });
const testBatch = values['test-batch'] ?? join(subset, TEST_FILE);
const result = await prepareSite({
  dir,
  original,
  compressed,
  testBatch,
  sampleCount: Number(values.samples),
});
console.log(`Prepared ${dir} on the ${engine.backend} backend:`);
for (const replacement of replacements) {
  console.log(`  ${replacement.layer} → ${replacement.strategy}: ${replacement.replacements.join(' + ')}`);
}
const { original: before, compressed: after } = result.models;
console.log(
  `  weights ${before.weightBytes} → ${after.weightBytes} bytes; Node predictions for ${result.sampleCount} images`,
);
console.log(`Serve it: DECOMPOSE_WEB_DATA=${dir} npx vite (or vite build, then vite preview)`);
