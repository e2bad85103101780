import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBundledSubset } from '@decompose/cifar10';
import { costTable, listTargets } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import { BUILT_IN_STRATEGIES, loadModel } from '@decompose/pipeline';
import { createCifarResNet } from '@decompose/resnet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readConfigFile } from '../files.js';
import { scanLayers } from '../sensitivity/scan.js';
import { runCommand } from '../test-command.js';
import { registerCompareCommand } from './command.js';
import { compareConfigSchema } from './config.js';
import { DEMO_PRESET } from './demo.js';
import { compareMarkdown } from './report.js';
import type { CompareResults } from './results.js';

const subset = findBundledSubset();

/** Runs `decompose compare` in-process. */
const compare = (...argv: string[]) => runCommand(registerCompareCommand, 'compare', argv);

const pct = (fraction: number) => `${(100 * fraction).toFixed(1)}%`;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * A tiny comparison: 32 training images in batches of 16, one epoch each, three arms on stage 3, BatchNorm
 * re-estimated on 16 images after each surgery.
 */
const tinyConfig = {
  run: 'tiny',
  data: subset,
  limitTrain: 48,
  limitTest: 16,
  // On the main thread: worker threads would cost more to start than these few steps take.
  baseline: { model: 'resnet20', epochs: 1, batch: 16, lr: 0.05, workers: 0 },
  fineTune: { epochs: 1, batch: 16, lr: 0.01, bnImages: 16, workers: 0 },
  measure: { batch: 4, steps: 1 },
  arms: [
    {
      name: 'basis-selected',
      strategy: 'basis',
      layers: 'stage3.*.conv2',
      select: { budget: 'params:0.3', selector: 'greedy', ratios: [0.25, 0.5], calibration: 16 },
    },
    { name: 'svd', strategy: 'svd', options: { ratio: 0.5 }, layers: ['stage3.block3.*'] },
    {
      name: 'tucker',
      strategy: 'decompose-plugin-tucker',
      options: { ratio: 0.5 },
      layers: 'stage3.block1.conv1',
    },
  ],
};

describe('decompose compare', () => {
  let dir: string;
  let configFile: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'decompose-compare-'));
    configFile = path.join(dir, 'compare.yaml');
    await writeFile(configFile, stringify({ ...tinyConfig, reportDir: path.join(dir, 'reports') }));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('trains a baseline, compresses, fine-tunes and measures each arm, and writes a consistent report', async () => {
    const { code, err, out } = await compare('--config', configFile);
    expect(err).toEqual([]);
    expect(code).toBe(0);
    // The scan's calibration images are kept out of the baseline's training.
    expect(out.join('\n')).toContain('on 32 images (16 held out for the sensitivity scans)');
    const report = path.join(dir, 'reports', 'tiny');
    for (const file of ['report.md', 'results.json', 'results.csv', 'run.log']) {
      expect(existsSync(path.join(report, file)), file).toBe(true);
    }
    const charts = [
      'accuracy-vs-params',
      'accuracy-vs-train-time',
      'training-curves',
      'sensitivity-basis-selected',
    ];
    for (const chart of charts) {
      const png = await readFile(path.join(report, `${chart}.png`));
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE), chart).toBe(true);
      expect(await readFile(path.join(report, `${chart}.svg`), 'utf8')).toContain('<svg');
    }

    const results = JSON.parse(await readFile(path.join(report, 'results.json'), 'utf8')) as CompareResults;
    expect(results.arms.map((a) => a.name)).toEqual(['basis-selected', 'svd', 'tucker']);
    expect(results.arms.map((a) => a.strategy)).toEqual(['basis', 'svd', 'tucker']);
    expect(results.baseline.trainedHere).toBe(true);
    for (const arm of results.arms) {
      expect(arm.deltaAccuracy).toBeCloseTo(arm.accuracy - results.baseline.accuracy, 12);
      expect(arm.params).toBeLessThan(results.baseline.params);
      expect(arm.modelBytes).toBeGreaterThan(0);
      expect(arm.fineTune.epochs).toHaveLength(1);
      expect(arm.bnAccuracy).toBeGreaterThanOrEqual(0);
      expect(arm.bnAccuracy).toBeLessThanOrEqual(1);
      // params and MACs are the cost table of the saved model
      const model = await loadModel(arm.modelDir);
      const cost = costTable(model, { strategies: BUILT_IN_STRATEGIES }).total;
      model.dispose();
      expect([arm.params, arm.forwardMacs]).toEqual([cost.params, cost.forwardMacs]);
    }
    const selected = results.arms[0]!;
    expect(selected.selection?.choices.map((c) => c.layer)).toEqual(selected.rewritten.map((r) => r.layer));
    expect(selected.scan?.calibrationSize).toBe(16);
    expect(results.arms[1]!.rewritten.map((r) => r.layer)).toEqual([
      'stage3.block3.conv1',
      'stage3.block3.conv2',
    ]);

    // One CSV row per model, holding the JSON's numbers.
    const csv = (await readFile(path.join(report, 'results.csv'), 'utf8')).trim().split('\n');
    const header = csv[0]!.split(',');
    const rows = csv
      .slice(1)
      .map((line) => Object.fromEntries(line.split(',').map((v, i) => [header[i], v])));
    expect(rows.map((r) => r.model)).toEqual(['baseline', 'basis-selected', 'svd', 'tucker']);
    for (const [i, arm] of results.arms.entries()) {
      const row = rows[i + 1]!;
      expect(Number(row.params)).toBe(arm.params);
      expect(Number(row.test_accuracy)).toBe(arm.accuracy);
      expect(Number(row.delta_accuracy)).toBe(arm.deltaAccuracy);
      expect(Number(row.model_bytes)).toBe(arm.modelBytes);
      expect(Number(row.bn_accuracy)).toBe(arm.bnAccuracy);
    }
    expect(Number(rows[0]!.params)).toBe(results.baseline.params);

    const markdown = await readFile(path.join(report, 'report.md'), 'utf8');
    expect(markdown).toContain('![Test accuracy against parameters](accuracy-vs-params.png)');
    expect(markdown).toContain('![Sensitivity heatmap of basis-selected](sensitivity-basis-selected.png)');
    expect(markdown).toContain('greedy selection for remove 30.0%');
    expect(markdown).toContain('## Wall-clock per phase');
    expect(markdown).toContain(
      '| model | acc after surgery | acc after BN re-estimation | acc after fine-tune |',
    );
    expect(markdown).toContain(
      `| svd | ${pct(results.arms[1]!.surgeryAccuracy)} | ${pct(results.arms[1]!.bnAccuracy!)} |`,
    );
    expect(markdown).toContain('re-estimated on 16 augmented training images');
    expect(markdown).toContain('| svd: BatchNorm re-estimation |');
    // Without re-estimation the column shows a dash.
    const kept = compareMarkdown(
      {
        ...results,
        recipe: { ...results.recipe, fineTune: { ...results.recipe.fineTune, bnImages: 0 } },
        arms: results.arms.map((a) => ({ ...a, bnAccuracy: null })),
      },
      new Map(),
    );
    expect(kept).toContain(`| svd | ${pct(results.arms[1]!.surgeryAccuracy)} | — |`);
    expect(kept).toContain('`fineTune.bnImages` is 0: no re-estimation');
    const log = await readFile(path.join(report, 'run.log'), 'utf8');
    expect(log).toContain("arm 3/3 'tucker'");
    expect(log).toMatch(
      /svd: test accuracy after BatchNorm re-estimation \d+\.\d% \(\d+\.\d% after surgery\)/,
    );
    expect(out.at(-1)).toMatch(/^report: .*report\.md/);

    // A re-run reuses every finished arm and the trained baseline.
    const again = await compare('--config', configFile);
    expect(again.code).toBe(0);
    expect(again.out.filter((l) => l.includes('finished earlier, reusing'))).toHaveLength(3);
    expect(again.out.some((l) => l.includes('baseline: trained earlier'))).toBe(true);
    const rerun = JSON.parse(await readFile(path.join(report, 'results.json'), 'utf8')) as CompareResults;
    expect(rerun.arms.map((a) => a.accuracy)).toEqual(results.arms.map((a) => a.accuracy));

    // An arm whose result is lost after its fine-tune checkpointed resumes from the report's checkpoints
    // (in this process the arm's unit checkpoints there) and gives the same numbers.
    const svdDir = path.join(report, 'arms', results.arms[1]!.name);
    expect(existsSync(path.join(svdDir, 'checkpoints', 'metrics.jsonl'))).toBe(true);
    await rm(path.join(svdDir, 'result.json'));
    const resumed = await compare('--config', configFile);
    expect(resumed.code).toBe(0);
    expect(resumed.out.filter((l) => l.includes('finished earlier, reusing'))).toHaveLength(2);
    const afterResume = JSON.parse(
      await readFile(path.join(report, 'results.json'), 'utf8'),
    ) as CompareResults;
    expect(afterResume.arms[1]!.accuracy).toBe(results.arms[1]!.accuracy);
    expect(afterResume.arms[1]!.fineTune.epochs).toEqual(results.arms[1]!.fineTune.epochs);

    // A changed baseline recipe is not silently reused.
    const changed = path.join(dir, 'changed.yaml');
    await writeFile(
      changed,
      stringify({
        ...tinyConfig,
        reportDir: path.join(dir, 'reports'),
        baseline: { ...tinyConfig.baseline, lr: 0.02 },
      }),
    );
    const refused = await compare('--config', changed);
    expect(refused.code).toBe(2);
    expect(refused.err[0]).toMatch(/'baseline': .* holds a baseline trained with other settings/);

    // Nor are arms made with another BatchNorm re-estimation (the baseline is).
    const otherBn = path.join(dir, 'other-bn.yaml');
    await writeFile(
      otherBn,
      stringify({
        ...tinyConfig,
        reportDir: path.join(dir, 'reports'),
        fineTune: { ...tinyConfig.fineTune, bnImages: 0 },
      }),
    );
    const refusedArm = await compare('--config', otherBn);
    expect(refusedArm.code).toBe(2);
    expect(refusedArm.out.some((l) => l.includes('baseline: trained earlier'))).toBe(true);
    expect(refusedArm.err[0]).toMatch(
      /'arms\.0' \(basis-selected\): .* holds a result made with other settings/,
    );
  });

  it("pins the demo's scan to every convolution, as its other arms (not the Dense head)", async () => {
    await initEngine();
    const preset = compareConfigSchema.parse(DEMO_PRESET);
    const [scanned, ...others] = preset.arms;
    const model = createCifarResNet({ arch: preset.baseline.model, seed: 0 });
    try {
      const basis = BUILT_IN_STRATEGIES.find((s) => s.name === 'basis')!;
      const candidates = scanLayers(model, basis, scanned!.select!.ratios, {}, scanned!.layers, 'layers');
      const convolutions = listTargets(model)
        .filter((t) => t.conv !== null)
        .map((t) => t.name);
      expect(candidates).toEqual(convolutions);
      expect(candidates).toHaveLength(19);
      for (const arm of others) expect(arm.layers).toEqual(scanned!.layers);
    } finally {
      model.dispose();
    }
  });

  it('accepts the example config', async () => {
    const example = await readConfigFile(fileURLToPath(new URL('example.compare.yaml', import.meta.url)));
    const config = compareConfigSchema.parse(example);
    expect(config.arms.map((a) => a.name)).toEqual(['basis-selected', 'basis-half', 'svd-stage23', 'tucker']);
    expect(config.arms[0]?.select?.budget).toEqual({ kind: 'reduction', target: 'params', reduction: 0.4 });
    expect(compareConfigSchema.parse(DEMO_PRESET).arms).toHaveLength(4);
    expect(compareConfigSchema.parse(DEMO_PRESET).fineTune.bnImages).toBe(1024);
    expect(config.fineTune.bnImages).toBe(1024);
  });

  it('reports every bad field of a config with its value and the expected form', async () => {
    const bad = path.join(dir, 'bad.yaml');
    await writeFile(
      bad,
      stringify({
        fineTune: { epochs: 0, lr: -1, bnImages: -1 },
        arms: [
          { name: 'a b', strategy: 'basis', select: { budget: 'params:2' } },
          { name: 'x', strategy: 'svd', colour: 'red' },
        ],
      }),
    );
    const { code, err } = await compare('--config', bad);
    expect(code).toBe(2);
    const message = err.join('\n');
    expect(message).toContain(
      `'fineTune.epochs' in ${bad}: got 0; epochs must be a whole number in [1, 1000]`,
    );
    expect(message).toContain(`'fineTune.lr' in ${bad}: got -1; lr must be in (0, 10]`);
    expect(message).toContain(
      `'fineTune.bnImages' in ${bad}: got -1; bnImages must be a whole number in [0, 1000000]`,
    );
    expect(message).toContain(`'arms.0.name' in ${bad}: got "a b"; name must be letters, digits`);
    expect(message).toContain(`'arms.0.select.budget' in ${bad}: got "params:2"; expected 'params:F'`);
    expect(message).toContain(`'colour' in ${bad}: unknown field`);
    const twoSplits = path.join(dir, 'two-splits.yaml');
    await writeFile(
      twoSplits,
      stringify({
        arms: [
          { name: 'a', strategy: 'basis', select: { budget: 'params:0.3', calibration: 16 } },
          { name: 'b', strategy: 'svd', select: { budget: 'params:0.3', calibration: 32 } },
        ],
      }),
    );
    const split = await compare('--config', twoSplits);
    expect(split.code).toBe(2);
    expect(split.err.join('\n')).toContain('every arm that selects layers scans the same calibration split');
    // Strategy options are checked for every arm before any training.
    const options = path.join(dir, 'options.yaml');
    await writeFile(
      options,
      stringify({
        reportDir: path.join(dir, 'reports'),
        arms: [
          { name: 'ok', strategy: 'basis' },
          { name: 'svd', strategy: 'svd', options: { ratio: 2 } },
        ],
      }),
    );
    const early = await compare('--config', options);
    expect(early.code).toBe(2);
    expect(early.err[0]).toMatch(
      /^error: .*'arms\.1\.options' \(svd\): Invalid options for strategy 'svd': ratio: got 2/,
    );
    expect(existsSync(path.join(dir, 'reports', 'compare', 'baseline'))).toBe(false);
    const noConfig = await compare('--run', 'x');
    expect(noConfig.err[0]).toMatch(
      /arms.*: got nothing; expected a list of arms .*give the config with --config$/,
    );
    const none = await compare('--config', path.join(dir, 'missing.yaml'));
    expect(none.code).toBe(2);
    expect(none.err[0]).toMatch(/^error: Cannot read config file .*missing\.yaml/);
  });
});
