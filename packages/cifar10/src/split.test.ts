import { beforeAll, describe, expect, it } from 'vitest';
import { type Cifar10Images, NUM_CLASSES, PIXELS_PER_IMAGE } from './format.js';
import { readCifar10 } from './reader.js';
import { splitCalibration } from './split.js';
import { SUBSET_DIR } from './test-fixtures.js';

function classCounts(labels: Uint8Array): number[] {
  const counts: number[] = new Array(NUM_CLASSES).fill(0);
  for (const label of labels) counts[label]! += 1;
  return counts;
}

describe('splitCalibration', () => {
  let train: Cifar10Images;
  beforeAll(async () => {
    train = (await readCifar10(SUBSET_DIR)).train;
  });

  it('holds out the asked count, stratified by class, disjoint from the rest', () => {
    const split = splitCalibration(train, { count: 500, seed: 1 });
    expect(split.calibration.count).toBe(500);
    expect(split.train.count).toBe(5085 - 500);
    const all = classCounts(train.labels);
    const held = classCounts(split.calibration.labels);
    for (let c = 0; c < NUM_CLASSES; c++) expect(Math.abs(held[c]! - (all[c]! * 500) / 5085)).toBeLessThan(1);
    const indices = new Set([...split.calibrationIndices, ...split.trainIndices]);
    expect(indices.size).toBe(5085);
  });

  it('copies the chosen images with their labels', () => {
    const split = splitCalibration(train, { fraction: 0.1, seed: 2 });
    expect(split.calibration.count).toBe(509);
    for (const i of [0, 100, 508]) {
      const source = split.calibrationIndices[i]!;
      expect(split.calibration.labels[i]).toBe(train.labels[source]);
      expect(split.calibration.images.subarray(i * PIXELS_PER_IMAGE, (i + 1) * PIXELS_PER_IMAGE)).toEqual(
        train.images.subarray(source * PIXELS_PER_IMAGE, (source + 1) * PIXELS_PER_IMAGE),
      );
    }
    const last = split.train.count - 1;
    expect(split.train.labels[last]).toBe(train.labels[split.trainIndices[last]!]);
  });

  it('is deterministic by seed', () => {
    const a = splitCalibration(train, { count: 200, seed: 7 });
    expect(splitCalibration(train, { count: 200, seed: 7 }).calibrationIndices).toEqual(a.calibrationIndices);
    expect(splitCalibration(train, { count: 200, seed: 8 }).calibrationIndices).not.toEqual(
      a.calibrationIndices,
    );
  });

  it('rejects a bad size', () => {
    expect(() => splitCalibration(train, {})).toThrow(/exactly one/);
    expect(() => splitCalibration(train, { count: 10, fraction: 0.1 })).toThrow(/exactly one/);
    expect(() => splitCalibration(train, { count: 5085 })).toThrow(/1\.\.5084/);
    expect(() => splitCalibration(train, { fraction: 1 })).toThrow(RangeError);
  });
});
