import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ImageSet } from '@decompose/cifar10';
import { describe, expect, it } from 'vitest';
import {
  calibrationSeenInTraining,
  holdOutSplit,
  readTrainingRecord,
  resolveCalibration,
  trainingRecordOf,
} from './calibration.js';
import { CalibrationError } from './errors.js';

/** `count` distinct 1×1×3 images in two classes. */
function images(count: number, offset = 0): ImageSet {
  return {
    images: Uint8Array.from({ length: count * 3 }, (_, i) => (Math.floor(i / 3) + offset) % 256),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 2),
    count,
    shape: [1, 1, 3],
  };
}

const fields = { count: '--calibration', model: '--model-dir' };

describe('calibrationSeenInTraining', () => {
  const train = images(40);
  const { record, indices } = holdOutSplit(train, 8, 3, '--hold-out');

  it('is 0 for the held-out images, and counts those outside the hold-out', () => {
    expect(calibrationSeenInTraining(train, record, indices)).toBe(0);
    const other = holdOutSplit(train, 8, 4, '--hold-out').indices;
    const outside = [...other].filter((i) => !indices.includes(i)).length;
    expect(outside).toBeGreaterThan(0);
    expect(calibrationSeenInTraining(train, record, other)).toBe(outside);
  });

  it('is all of them without a hold-out, or with the hold-out of other images', () => {
    expect(calibrationSeenInTraining(train, null, indices)).toBe(8);
    expect(calibrationSeenInTraining(images(40, 7), record, indices)).toBe(8);
  });
});

describe('resolveCalibration', () => {
  const train = images(40);
  const { record } = holdOutSplit(train, 8, 3, '--hold-out');

  it('takes the hold-out exactly by default, with no warning', () => {
    const resolved = resolveCalibration(train, { trainingSeed: 3, holdOut: record }, {}, fields);
    expect([...resolved.indices]).toEqual(record.indices);
    expect(resolved.warning).toBeNull();
  });

  it('warns how many calibration images were seen when asked for another split', () => {
    const resolved = resolveCalibration(train, { trainingSeed: 3, holdOut: record }, { seed: 9 }, fields);
    const seen = calibrationSeenInTraining(train, record, resolved.indices);
    expect(resolved.warning).toContain(`${seen} of the 8 calibration images were seen in training`);
  });

  it('names the field when the held-out images cannot be recreated or the split is too large', () => {
    expect(() => resolveCalibration(images(40, 7), { trainingSeed: 3, holdOut: record }, {}, fields)).toThrow(
      /--model-dir: the training run held out 8 of its 40 training images/,
    );
    expect(() =>
      resolveCalibration(train, { trainingSeed: null, holdOut: null }, { count: 40 }, fields),
    ).toThrow(CalibrationError);
  });
});

describe('trainingRecordOf and readTrainingRecord', () => {
  const { record } = holdOutSplit(images(40), 8, 3, '--hold-out');

  it('reads the seed and the hold-out of a training summary', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'record-'));
    const file = path.join(dir, 'summary.json');
    await writeFile(file, JSON.stringify({ config: { seed: 7 }, holdOut: record, epochs: [] }));
    expect(await readTrainingRecord(file)).toEqual({ trainingSeed: 7, holdOut: record });
  });

  it('says nothing was held out, and no seed, for a missing file or fields of another shape', async () => {
    expect(await readTrainingRecord(path.join(tmpdir(), 'no-such-run', 'summary.json'))).toEqual({
      trainingSeed: null,
      holdOut: null,
    });
    expect(trainingRecordOf({ config: { seed: -1 }, holdOut: { count: 8 } })).toEqual({
      trainingSeed: null,
      holdOut: null,
    });
    expect(trainingRecordOf(null)).toEqual({ trainingSeed: null, holdOut: null });
  });
});
