import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBundledSubset, readCifar10, selectImages } from '@decompose/cifar10';
import { imagesFingerprint } from '@decompose/pipeline';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainConfigSchema } from './config.js';
import { Console } from './progress.js';
import { runSensitivity } from './sensitivity/command.js';
import { sensitivityConfigSchema } from './sensitivity/config.js';
import { runTrain, type TrainSummary, trainOptions, unitProgress } from './train.js';

const images = { images: new Uint8Array(0), labels: new Uint8Array(0), count: 0 };
const run = (epochs: number) => ({ model: {} as LayersModel, trainData: images, evalData: images, epochs });
const quiet = new Console(false, () => {});
const subset = findBundledSubset();

it('maps the command-line recipe onto the train package options', () => {
  const config = trainConfigSchema.parse({ nesterov: true, decayOn: 'kernels' });
  const options = trainOptions(config, run(15), quiet);
  expect(options).toMatchObject({
    batchSize: 128,
    schedule: { type: 'cosine', lr: 0.1, warmupEpochs: 0 },
    optimizer: { momentum: 0.9, nesterov: true, weightDecay: 5e-4, weightDecayScope: 'kernels' },
    labelSmoothing: 0,
    augment: true,
  });
});

it('puts the step schedule milestones at half and three quarters unless given', () => {
  const step = trainConfigSchema.parse({ schedule: 'step', lr: 0.2, gamma: 0.5 });
  expect(trainOptions(step, run(8), quiet).schedule).toEqual({
    type: 'step',
    lr: 0.2,
    milestones: [4, 6],
    gamma: 0.5,
    warmupEpochs: 0,
  });
  const given = trainConfigSchema.parse({ schedule: 'step', milestones: [3] });
  expect(trainOptions(given, run(8), quiet).schedule).toMatchObject({ milestones: [3], gamma: 0.1 });
});

it('refuses a hold-out seed without a hold-out', () => {
  const parsed = trainConfigSchema.safeParse({ holdOutSeed: 3 });
  expect(parsed.success).toBe(false);
  expect(parsed.error?.issues[0]?.message).toBe(
    'holdOutSeed needs holdOut (the number of images to hold out)',
  );
});

it("logs a training unit's resumed attempt, and leaves the arm's events to its caller", () => {
  const lines: string[] = [];
  const events: unknown[] = [];
  const draw = unitProgress(16, new Console(false, (line) => lines.push(line)), (event) =>
    events.push(event),
  );
  draw({ phase: 'resumed', done: 2, total: 5 });
  draw({ phase: 'surgery', done: 0, total: 1, strategy: 'svd', rewritten: 3, skipped: 0 });
  expect(lines).toEqual(["training resumed after epoch 2/5 from an earlier attempt's checkpoint"]);
  expect(events).toEqual([
    { phase: 'surgery', done: 0, total: 1, strategy: 'svd', rewritten: 3, skipped: 0 },
  ]);
});

describe('train --hold-out', () => {
  let dir: string;
  let summary: TrainSummary;
  const log: string[] = [];
  const data = { data: subset, limitTrain: 64, limitTest: 8 };
  let recipe: Record<string, unknown>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-holdout-'));
    recipe = {
      ...data,
      epochs: 1,
      batch: 8,
      augment: false,
      holdOut: 16,
      workers: 0,
      out: path.join(dir, 'run'),
    };
    const config = trainConfigSchema.parse({ ...recipe, holdOutSeed: 5 });
    summary = await runTrain(config, new Console(false, (l) => log.push(l)));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps a stratified split out of training and records how to recreate it', async () => {
    expect(summary.data.train).toBe(48);
    // 48 images in batches of 8: six steps, where all 64 would take eight.
    expect(summary.epochs[0]?.globalStep).toBe(6);
    const holdOut = summary.holdOut!;
    expect(holdOut).toMatchObject({ count: 16, seed: 5, from: 64 });
    expect(holdOut.indices).toHaveLength(16);
    const train = selectImages(
      (await readCifar10(subset)).train,
      Uint32Array.from({ length: 64 }, (_, i) => i),
    );
    expect(imagesFingerprint(selectImages(train, Uint32Array.from(holdOut.indices)))).toBe(
      holdOut.fingerprint,
    );
    // Stratified: each class gives about a quarter of its images.
    const perClass = new Map<number, number>();
    for (const i of holdOut.indices)
      perClass.set(train.labels[i]!, (perClass.get(train.labels[i]!) ?? 0) + 1);
    for (let label = 0; label < 10; label++) {
      const members = train.labels.filter((l) => l === label).length;
      expect(Math.abs((perClass.get(label) ?? 0) - members / 4)).toBeLessThan(1);
    }
    const written = JSON.parse(await readFile(path.join(dir, 'run', 'summary.json'), 'utf8')) as TrainSummary;
    expect(written.holdOut).toEqual(holdOut);
    expect(log).toContain(
      'held out 16 of 64 training images (stratified, seed 5) as the calibration split; training on 48',
    );
  });

  it('refuses to resume the run with a hold-out of other images', async () => {
    const resume = (holdOutSeed: number) =>
      runTrain(
        trainConfigSchema.parse({ ...recipe, holdOutSeed, resume: true }),
        new Console(false, () => {}),
      );
    await expect(resume(6)).rejects.toThrow(
      /--hold-out\/--hold-out-seed: the run being resumed held out other images .*hold-out\.json/,
    );
    const record = JSON.parse(await readFile(path.join(dir, 'run', 'hold-out.json'), 'utf8')) as unknown;
    expect(record).toEqual(summary.holdOut);
  });

  it('makes decompose sensitivity measure on exactly the held-out images, and warns when told otherwise', async () => {
    const scan = async (extra: Record<string, unknown>) => {
      const lines: string[] = [];
      const result = await runSensitivity(
        sensitivityConfigSchema.parse({
          ...data,
          modelDir: path.join(dir, 'run'),
          strategy: 'svd',
          ratios: [0.5],
          layers: ['stage3.block3.conv2'],
          batch: 16,
          workers: 0,
          out: path.join(dir, `scan-${String(extra.seed ?? 'held')}`),
          ...extra,
        }),
        new Console(false, (l) => lines.push(l)),
      );
      return { result, lines };
    };
    const held = await scan({});
    expect(held.result.calibrationSize).toBe(16);
    expect(held.result.seed).toBe(5);
    expect(held.lines).toContain(
      'calibration split: the 16 training images the training run held out (seed 5)',
    );
    expect(held.lines.some((l) => l.startsWith('warning:'))).toBe(false);

    const other = await scan({ seed: 6 });
    expect(other.lines).toContain('calibration split: 16 training images, seed 6 (--seed)');
    const warning = other.lines.find((l) => l.startsWith('warning:'));
    expect(warning).toMatch(/^warning: \d+ of the 16 calibration images were seen in training/);
    expect(Number(/^warning: (\d+)/.exec(warning ?? '')?.[1])).toBeGreaterThan(0);
  });
});
