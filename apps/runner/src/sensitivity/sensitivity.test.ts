import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findBundledSubset } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { saveModel } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import type { Selection, SensitivityTable } from '@decompose/sensitivity';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../test-command.js';
import { registerSensitivityCommand } from './command.js';

const subset = findBundledSubset();

/** Runs `decompose sensitivity` in-process. */
const sensitivity = (...argv: string[]) => runCommand(registerSensitivityCommand, 'sensitivity', argv);

const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(file, 'utf8')) as T;
const lines = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n');

describe('decompose sensitivity', () => {
  let dir: string;
  let modelDir: string;
  beforeAll(async () => {
    await initEngine();
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-sensitivity-'));
    // An untrained ResNet-20 in a run folder whose summary records the training seed.
    modelDir = path.join(dir, 'run', 'model');
    const model = createCifarResNet({ arch: 'resnet20', seed: 3 });
    await saveModel(model, modelDir);
    model.dispose();
    await writeFile(path.join(dir, 'run', 'summary.json'), JSON.stringify({ config: { seed: 7 } }));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const scan = (out: string, ...extra: string[]) =>
    sensitivity(
      '--model-dir',
      modelDir,
      '--strategy',
      'svd',
      '--ratios',
      '0.25,0.5',
      '--layers',
      'stage3.block1.conv1,stage3.block2.conv2',
      '--calibration',
      '16',
      '--batch',
      '16',
      '--data',
      subset,
      '--limit-train',
      '64',
      '--limit-test',
      '8',
      '--workers',
      '0',
      '--out',
      out,
      ...extra,
    );

  it('scans, writes the table, CSV, heatmap and selection, and resumes from the cache', async () => {
    const out = path.join(dir, 'scan');
    const first = await scan(out, '--budget', 'params:0.3', '--selector', 'per-layer');
    expect(first.err).toEqual([]);
    expect(first.code).toBe(0);
    expect(first.out).toContain("calibration split: 16 training images, seed 7 (the training run's seed)");
    // The run held nothing out, so the model was trained on every calibration image.
    expect(
      first.out.some((l) => l.startsWith('warning: 16 of the 16 calibration images were seen in training')),
    ).toBe(true);
    const table = await readJson<SensitivityTable>(path.join(out, 'sensitivity.json'));
    expect(table.layers.map((l) => l.layer)).toEqual(['stage3.block1.conv1', 'stage3.block2.conv2']);
    expect(table.entries).toHaveLength(4);
    expect(table.calibrationSize).toBe(16);
    const csv = await lines(path.join(out, 'sensitivity.csv'));
    expect(csv).toHaveLength(5);
    const png = await readFile(path.join(out, 'sensitivity-heatmap.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(await readFile(path.join(out, 'sensitivity-heatmap.svg'), 'utf8')).toContain('<svg');
    const selection = await readJson<Selection>(path.join(out, 'selection.json'));
    expect(selection.method).toBe('per-layer');
    expect(selection.met).toBe(true);
    expect(selection.metric).toBe('accuracy');
    expect(first.out.some((l) => l.startsWith('per-layer selection for remove 30.0%'))).toBe(true);
    expect(
      first.out.some((l) =>
        /^ranked by calibration accuracy drop; accepted per-layer accuracy drop /.test(l),
      ),
    ).toBe(true);

    // A killed scan: only the first two entries reached the cache; one is marked to prove it is reused.
    const cacheFile = path.join(out, 'scan-cache.jsonl');
    const cached = (await lines(cacheFile)).slice(0, 2);
    const marked = JSON.parse(cached[0]!) as { key: string; entry: SensitivityTable['entries'][number] };
    marked.entry.metric.accuracy = 0.123;
    await writeFile(cacheFile, `${JSON.stringify(marked)}\n${cached[1]}`); // torn: no final newline
    const resumed = await scan(out, '--budget', 'params:0.3', '--metric', 'loss');
    expect(resumed.code).toBe(0);
    const byLoss = await readJson<Selection>(path.join(out, 'selection.json'));
    expect(byLoss.metric).toBe('loss');
    expect(byLoss.method).toBe('greedy');
    expect(byLoss.reduction.params).toBeGreaterThanOrEqual(0.3);
    expect(
      resumed.out.some((l) =>
        /^ranked by calibration loss increase; params removed [\d.]+% for a target of 30\.0%/.test(l),
      ),
    ).toBe(true);
    expect(resumed.out.some((l) => l.includes('(2 entries cached in'))).toBe(true);
    const after = await lines(cacheFile);
    expect(after).toHaveLength(4); // two kept, two computed
    expect(after.slice(0, 2)).toEqual([JSON.stringify(marked), cached[1]]);
    const again = await readJson<SensitivityTable>(path.join(out, 'sensitivity.json'));
    expect(again.entries[0]?.metric.accuracy).toBe(0.123);
    expect(again.entries.slice(1)).toEqual(table.entries.slice(1));
  });

  it('refuses a recorded hold-out that the images read now cannot recreate, and warns on a new split', async () => {
    const run = path.join(dir, 'held-run');
    await cp(path.dirname(modelDir), run, { recursive: true });
    const holdOut = {
      count: 16,
      seed: 1,
      from: 64,
      indices: [...Array(16).keys()],
      fingerprint: 'not-these',
    };
    await writeFile(path.join(run, 'summary.json'), JSON.stringify({ config: { seed: 7 }, holdOut }));
    const args = [
      '--model-dir',
      run,
      '--strategy',
      'svd',
      '--ratios',
      '0.5',
      '--layers',
      'stage3.block3.conv2',
    ];
    const data = ['--data', subset, '--limit-train', '64', '--limit-test', '8', '--batch', '16'];
    const refused = await sensitivity(...args, ...data, '--out', path.join(dir, 'held-a'));
    expect(refused.code).toBe(2);
    expect(refused.err[0]).toContain(
      '--model-dir: the training run held out 16 of its 64 training images, but the 64 training images read now are not the ones it split',
    );
    const anew = await sensitivity(
      ...args,
      ...data,
      '--calibration',
      '16',
      '--out',
      path.join(dir, 'held-b'),
    );
    expect(anew.code).toBe(0);
    expect(anew.out).toContain(
      "calibration split: 16 training images, seed 1 (the training run's hold-out seed)",
    );
    expect(
      anew.out.some((l) => l.startsWith('warning: the training run held out images of another training set')),
    ).toBe(true);
  });

  it('rejects bad ratios, budgets and layer globs with the field, value and expected form', async () => {
    const bad = await scan(
      path.join(dir, 'bad'),
      '--ratios',
      '0.5,2',
      '--budget',
      'flops:3',
      '--metric',
      'top5',
    );
    expect(bad.code).toBe(2);
    expect(bad.err[0]).toContain('--metric: got "top5"');
    expect(bad.err[0]).toContain(
      '--ratios: got "0.5,2"; each ratio must be in (0, 1]; expected e.g. 0.25,0.5,0.75',
    );
    expect(bad.err[0]).toContain('--budget: got "flops:3"; expected \'params:F\'');
    const glob = await sensitivity(
      '--model-dir',
      modelDir,
      '--strategy',
      'svd',
      '--layers',
      'stage9.**',
      '--data',
      subset,
      '--out',
      path.join(dir, 'glob'),
    );
    expect(glob.code).toBe(2);
    expect(glob.err[0]).toMatch(
      /--layers: "stage9\.\*\*" matches no layer surgery can rewrite \(a convolution or a Dense\); the model's are stem\.conv, .*, head\.fc$/,
    );
  });
});
