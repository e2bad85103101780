import { describe, expect, it } from 'vitest';
import { InvalidTrainingOptionError } from './errors.js';
import { createSchedule } from './schedule.js';

describe('createSchedule', () => {
  it('cosine decays per step from lr to 0 (CosineAnnealingLR with T_max = total steps)', () => {
    const lr = createSchedule({ type: 'cosine', lr: 0.1 }, { stepsPerEpoch: 10, epochs: 2 });
    expect(lr(0)).toBe(0.1);
    expect(lr(10)).toBeCloseTo(0.05, 12);
    expect(lr(5)).toBeCloseTo(0.05 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(lr(19)).toBeCloseTo(0.05 * (1 + Math.cos((Math.PI * 19) / 20)), 12);
    expect(lr(20)).toBeCloseTo(0, 12);
  });

  it('cosine decays to a floor', () => {
    const lr = createSchedule({ type: 'cosine', lr: 0.1, floor: 0.01 }, { stepsPerEpoch: 4, epochs: 1 });
    expect(lr(2)).toBeCloseTo(0.055, 12);
    expect(lr(4)).toBeCloseTo(0.01, 12);
  });

  it('step multiplies by gamma at each milestone epoch', () => {
    const lr = createSchedule(
      { type: 'step', lr: 0.1, milestones: [2, 4], gamma: 0.1 },
      { stepsPerEpoch: 3, epochs: 6 },
    );
    expect([0, 5, 6, 11, 12, 17].map(lr)).toEqual([
      0.1,
      0.1,
      0.1 * 0.1,
      0.1 * 0.1,
      0.1 * 0.1 ** 2,
      0.1 * 0.1 ** 2,
    ]);
  });

  it('warms up linearly, then follows the schedule from the end of warm-up', () => {
    const lr = createSchedule({ type: 'cosine', lr: 0.4, warmupEpochs: 1 }, { stepsPerEpoch: 4, epochs: 3 });
    expect([0, 1, 2, 3].map(lr)).toEqual([0.1, 0.2, 0.30000000000000004, 0.4]);
    expect(lr(4)).toBe(0.4);
    expect(lr(8)).toBeCloseTo(0.2, 12);
  });

  it('rejects bad specs with the field named', () => {
    const length = { stepsPerEpoch: 4, epochs: 2 };
    expect(() => createSchedule({ type: 'cosine', lr: -1 }, length)).toThrow(/schedule\.lr/);
    expect(() => createSchedule({ type: 'step', lr: 0.1, milestones: [3, 2], gamma: 0.1 }, length)).toThrow(
      /milestones/,
    );
    expect(() => createSchedule({ type: 'constant', lr: 0.1, warmupEpochs: 2 }, length)).toThrow(
      InvalidTrainingOptionError,
    );
    expect(() => createSchedule({ type: 'constant', lr: 0.1 }, length)(-1)).toThrow(/step/);
  });
});
