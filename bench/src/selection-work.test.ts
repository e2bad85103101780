import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WorkDir, WorkDirMismatchError } from './selection-work.js';

describe('the selection work directory', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-selection-work-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a directory of another configuration, naming what differs', async () => {
    await WorkDir.open(dir, { seed: 0, ratios: [0.5] });
    await expect(WorkDir.open(dir, { seed: 0, ratios: [0.5] })).resolves.toBeInstanceOf(WorkDir);
    const other = WorkDir.open(dir, { seed: 1, ratios: [0.5] });
    await expect(other).rejects.toThrow(WorkDirMismatchError);
    await expect(WorkDir.open(dir, { seed: 1, ratios: [0.5] })).rejects.toThrow('seed: 0 → 1');
  });

  it('adds the scan seconds of a resumed run to those of the runs before it', async () => {
    const first = await (await WorkDir.open(dir, {})).scanTime();
    expect(first.earlier).toBe(0);
    // Records as entries finish, the last one standing for the whole run.
    await Promise.all([first.record(1), first.record(2.5)]);
    const second = await (await WorkDir.open(dir, {})).scanTime();
    expect(second.earlier).toBe(2.5);
    await second.record(4);
    expect((await (await WorkDir.open(dir, {})).scanTime()).earlier).toBe(6.5);
  });
});
