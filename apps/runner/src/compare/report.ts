import path from 'node:path';
import { renderChart } from '../charts.js';
import { describeTestSplit } from '../data.js';
import { skipReason } from '../engine-report.js';
import { writeAtomic } from '../files.js';
import type { Console } from '../progress.js';
import { paretoSpec, sensitivityHeatmapSpec, trainingCurvesSpec } from '../report/charts.js';
import { toCsv } from '../report/csv.js';
import { markdownTable } from '../report/markdown.js';
import { formatBudget, selectionMarkdown } from '../report/selection.js';
import { type Column, formatCount } from '../table.js';
import { type ArmRow, COMPARE_FILES, type CompareResults } from './results.js';

/** Chart files of a compare report (each as `.svg` and `.png`). */
export const COMPARE_CHARTS = {
  params: 'accuracy-vs-params',
  time: 'accuracy-vs-train-time',
  curves: 'training-curves',
  /** One per arm with a sensitivity scan: `sensitivity-<arm>`. */
  heatmap: (arm: string) => `sensitivity-${arm}`,
} as const;

const CSV_HEADER = [
  'model',
  'strategy',
  'test_accuracy',
  'delta_accuracy',
  'test_loss',
  'params',
  'params_ratio',
  'forward_macs',
  'macs_ratio',
  'train_images_per_second',
  'eval_images_per_second',
  'model_bytes',
  'layers_rewritten',
  'surgery_accuracy',
  'bn_accuracy',
  'fine_tune_seconds',
];

/** `results.csv`: the baseline, then one row per arm, with the same numbers as `results.json`. */
export function resultsCsv(results: CompareResults): string {
  const b = results.baseline;
  return toCsv(CSV_HEADER, [
    [
      'baseline',
      '',
      b.accuracy,
      0,
      b.loss,
      b.params,
      1,
      b.forwardMacs,
      1,
      b.trainImagesPerSecond,
      b.evalImagesPerSecond,
      b.modelBytes,
      0,
      '',
      '',
      '',
    ],
    ...results.arms.map((a) => [
      a.name,
      a.strategy,
      a.accuracy,
      a.deltaAccuracy,
      a.loss,
      a.params,
      a.paramsRatio,
      a.forwardMacs,
      a.macsRatio,
      a.trainImagesPerSecond,
      a.evalImagesPerSecond,
      a.modelBytes,
      a.rewritten.length,
      a.surgeryAccuracy,
      a.bnAccuracy,
      a.seconds.fineTune,
    ]),
  ]);
}

const pct = (fraction: number) => `${(100 * fraction).toFixed(1)}%`;
const signedPp = (fraction: number) => `${fraction >= 0 ? '+' : ''}${(100 * fraction).toFixed(2)}`;
const kib = (bytes: number) => (bytes / 1024).toFixed(1);
const seconds = (s: number) => (s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);

const LEADERBOARD: Column[] = [
  { heading: '#', align: 'right' },
  { heading: 'model' },
  { heading: 'strategy' },
  { heading: 'layers', align: 'right' },
  { heading: 'test acc', align: 'right' },
  { heading: 'Δ acc (pp)', align: 'right' },
  { heading: 'params', align: 'right' },
  { heading: 'params ×', align: 'right' },
  { heading: 'MACs/image', align: 'right' },
  { heading: 'MACs ×', align: 'right' },
  { heading: 'train img/s', align: 'right' },
  { heading: 'eval img/s', align: 'right' },
  { heading: 'weights KiB', align: 'right' },
];

function leaderboard(results: CompareResults): string[] {
  const b = results.baseline;
  const models = [
    {
      name: 'baseline',
      strategy: '—',
      layers: '—',
      delta: 0,
      paramsRatio: 1,
      macsRatio: 1,
      m: b,
      bytes: b.modelBytes,
    },
    ...results.arms.map((a) => ({
      name: a.name,
      strategy: a.strategy,
      layers: String(a.rewritten.length),
      delta: a.deltaAccuracy,
      paramsRatio: a.paramsRatio,
      macsRatio: a.macsRatio,
      m: a,
      bytes: a.modelBytes,
    })),
  ].sort((x, y) => y.m.accuracy - x.m.accuracy);
  return markdownTable(
    LEADERBOARD,
    models.map((row, i) => [
      String(i + 1),
      row.name === 'baseline' ? '**baseline**' : row.name,
      row.strategy,
      row.layers,
      pct(row.m.accuracy),
      row.name === 'baseline' ? '0' : signedPp(row.delta),
      formatCount(row.m.params),
      row.paramsRatio.toFixed(3),
      formatCount(row.m.forwardMacs),
      row.macsRatio.toFixed(3),
      row.m.trainImagesPerSecond.toFixed(1),
      row.m.evalImagesPerSecond.toFixed(1),
      kib(row.bytes),
    ]),
  );
}

function armSelection(arm: ArmRow, image: string | null): string[] {
  const lines = [`### ${arm.name} (${arm.strategy})`, ''];
  const options = JSON.stringify(arm.config.options);
  if (arm.selection && arm.scan) {
    const s = arm.config.select;
    lines.push(
      `Sensitivity scan of ${arm.scan.layers.length} layers × ${arm.scan.ratios.length} ratios (${arm.scan.ratios.join(', ')}) ` +
        `on ${arm.scan.calibrationSize} calibration images held out of the training set` +
        `${arm.scan.fineTuneSteps > 0 ? `, ${arm.scan.fineTuneSteps} fine-tune steps per entry` : ''}; ` +
        `${s ? `budget \`${formatBudget(arm.selection.budget)}\`, ${s.selector} selector` : ''}; shared options \`${options}\`.`,
      '',
      ...(image ? [`![Sensitivity heatmap of ${arm.name}](${image})`, ''] : []),
      ...selectionMarkdown(arm.selection),
    );
  } else {
    const layers = arm.config.layers
      ? `\`${arm.config.layers.join(', ')}\``
      : 'every layer the strategy supports';
    lines.push(
      `Layers: ${layers}; options \`${options}\`; ${arm.rewritten.length} rewritten, ${arm.skipped.length} skipped.`,
    );
  }
  const skipped = arm.skipped.map((s) => `\`${s.layer}\` (${s.reason})`);
  if (skipped.length > 0) lines.push('', `Skipped: ${skipped.join('; ')}.`);
  return [...lines, ''];
}

/** What the after-surgery columns of the fine-tuning table mean, given `fineTune.bnImages`. */
function bnNote(bnImages: number): string {
  return bnImages > 0
    ? `After surgery: the rewritten model with the baseline's BatchNorm statistics. After BN re-estimation: ` +
        `those statistics re-estimated on ${bnImages} augmented training images (\`fineTune.bnImages\`), where ` +
        'fine-tuning starts (epoch 0 of the curves).'
    : "After surgery: the rewritten model with the baseline's BatchNorm statistics, where fine-tuning starts " +
        '(`fineTune.bnImages` is 0: no re-estimation).';
}

function codeBlock(value: unknown): string[] {
  return ['```json', JSON.stringify(value, null, 2), '```'];
}

/** How the test images were split off an image folder, for the report; empty when the data had its own. */
function testSplitNote(split: CompareResults['data']['testSplit'] | undefined): string {
  return split ? ` (test images: ${describeTestSplit(split)})` : '';
}

/** The arms that failed for good, below the leaderboard (nothing when none did). */
function failedArms(results: CompareResults): string[] {
  const failed = results.failed ?? [];
  if (failed.length === 0) return [];
  return [
    `**${failed.length} arm${failed.length === 1 ? '' : 's'} failed** and ${failed.length === 1 ? 'is' : 'are'} not on the leaderboard (a re-run tries ${failed.length === 1 ? 'it' : 'them'} again):`,
    '',
    ...failed.map((f) => `- \`${f.name}\` (${f.strategy}): ${f.error.name}: ${f.error.message}`),
    '',
  ];
}

/** `report.md`: leaderboard, charts, selections, recipe, machine and the wall-clock of every phase. */
export function compareMarkdown(results: CompareResults, heatmaps: ReadonlyMap<string, string>): string {
  const m = results.machine;
  const measure = results.recipe.measure;
  const lines = [
    `# Compression comparison: ${results.run}`,
    '',
    `Generated ${results.createdAt} on ${m.cpu} (${m.cores} cores, ${m.memoryGiB} GiB), backend **${m.backend}** ` +
      `(${m.engine.threads} thread${m.engine.threads === 1 ? '' : 's'}), Node ${m.node}. Data: ${results.data.train} training and ${results.data.test} ` +
      `test images from \`${results.data.dir}\`${testSplitNote(results.data.testSplit)}.`,
    '',
    '## Leaderboard',
    '',
    ...leaderboard(results),
    '',
    ...failedArms(results),
    `Sorted by test accuracy. Δ acc is the arm's test accuracy minus the baseline's, in percentage points; × columns ` +
      `are fractions of the baseline. MACs are forward multiply-adds per image (core's cost table). Throughput is ` +
      `measured here: ${measure.steps} timed forward+backward (train) and inference (eval) passes on a batch of ` +
      `${measure.batch} test images after one warm-up, on a shared machine, so compare the ratios within this run ` +
      `rather than the absolute numbers. Weights KiB is the size of the saved \`weights.bin\`.`,
    '',
    '## Accuracy against cost',
    '',
    `![Test accuracy against parameters](${COMPARE_CHARTS.params}.png)`,
    '',
    `![Test accuracy against measured training time](${COMPARE_CHARTS.time}.png)`,
    '',
    'The dashed line joins the models no other model beats on both axes (the Pareto front).',
    '',
    '## Fine-tuning',
    '',
    `![Fine-tune training curves](${COMPARE_CHARTS.curves}.png)`,
    '',
    ...markdownTable(
      [
        { heading: 'model' },
        { heading: 'acc after surgery', align: 'right' },
        { heading: 'acc after BN re-estimation', align: 'right' },
        { heading: 'acc after fine-tune', align: 'right' },
        { heading: 'Δ acc (pp)', align: 'right' },
        { heading: 'epochs', align: 'right' },
      ],
      results.arms.map((a) => [
        a.name,
        pct(a.surgeryAccuracy),
        a.bnAccuracy === null ? '—' : pct(a.bnAccuracy),
        pct(a.accuracy),
        signedPp(a.deltaAccuracy),
        String(a.fineTune.epochs.length),
      ]),
    ),
    '',
    bnNote(results.recipe.fineTune.bnImages),
    '',
    '## Layer selection per arm',
    '',
    ...results.arms.flatMap((arm) => armSelection(arm, heatmaps.get(arm.name) ?? null)),
    '## Recipe',
    '',
    results.baseline.trainedHere
      ? `Baseline: ${results.baseline.architecture}, trained in this report with:`
      : `Baseline: loaded from \`${results.baseline.modelDir}\` (its recipe is in that run's summary); settings given:`,
    '',
    ...codeBlock(results.recipe.baseline),
    '',
    'BatchNorm re-estimation and fine-tuning after surgery, identical for every arm:',
    '',
    ...codeBlock(results.recipe.fineTune),
    '',
    '## Machine and backend',
    '',
    ...markdownTable(
      [{ heading: 'item' }, { heading: 'value' }],
      [
        ['CPU', `${m.cpu} × ${m.cores}`],
        ['memory', `${m.memoryGiB} GiB`],
        ['platform', m.platform],
        ['Node', m.node],
        ['backend', `${m.backend} (${m.engine.threads} thread${m.engine.threads === 1 ? '' : 's'})`],
        ...m.engine.skipped.map((s) => [`skipped ${s.backend}`, skipReason(s)]),
      ],
    ),
    '',
    '## Wall-clock per phase',
    '',
    ...markdownTable(
      [{ heading: 'phase' }, { heading: 'time', align: 'right' }, { heading: 'note' }],
      results.phases.map((p) => [p.phase, seconds(p.seconds), p.note ?? '']),
    ),
    '',
    `Total of this run: ${seconds(results.phases.filter((p) => !p.note).reduce((s, p) => s + p.seconds, 0))}. ` +
      'The whole log is in `run.log`; numbers in `results.json` and `results.csv`.',
    '',
  ];
  return lines.join('\n');
}

/** Renders the charts and writes `report.md` and `results.csv` into `reportDir`. */
export async function writeCompareReport(
  results: CompareResults,
  reportDir: string,
  out: Console,
): Promise<void> {
  const b = results.baseline;
  const models = [
    { name: 'baseline', baseline: true, accuracy: b.accuracy, params: b.params, ips: b.trainImagesPerSecond },
    ...results.arms.map((a) => ({
      name: a.name,
      baseline: false,
      accuracy: a.accuracy,
      params: a.params,
      ips: a.trainImagesPerSecond,
    })),
  ];
  const subtitle = `${results.machine.backend} backend, ${results.data.test} test images; run ${results.run}`;
  await renderChart(
    paretoSpec(
      models.map((m) => ({ name: m.name, baseline: m.baseline, accuracy: m.accuracy, x: m.params / 1000 })),
      { title: 'Test accuracy against model size', xTitle: 'parameters (thousands)', subtitle },
    ),
    path.join(reportDir, COMPARE_CHARTS.params),
  );
  await renderChart(
    paretoSpec(
      models.map((m) => ({ name: m.name, baseline: m.baseline, accuracy: m.accuracy, x: 1000 / m.ips })),
      {
        title: 'Test accuracy against measured training time',
        xTitle: 'training time per image (ms, forward+backward, measured)',
        subtitle: `${subtitle}; batch ${results.recipe.measure.batch}`,
      },
    ),
    path.join(reportDir, COMPARE_CHARTS.time),
  );
  const f = results.recipe.fineTune;
  await renderChart(
    trainingCurvesSpec(
      results.arms.flatMap((a) => a.fineTune.steps.map((s) => ({ model: a.name, ...s }))),
      results.arms.flatMap((a) => [
        { model: a.name, epoch: 0, accuracy: a.bnAccuracy ?? a.surgeryAccuracy },
        ...a.fineTune.epochs.flatMap((e) =>
          e.eval ? [{ model: a.name, epoch: e.epoch, accuracy: e.eval.accuracy }] : [],
        ),
      ]),
      models.map((m) => m.name),
      `${f.epochs} epoch${f.epochs === 1 ? '' : 's'}, batch ${f.batch}, lr ${f.lr} (${f.schedule}), momentum ${f.momentum}, weight decay ${f.weightDecay}`,
    ),
    path.join(reportDir, COMPARE_CHARTS.curves),
  );
  const heatmaps = new Map<string, string>();
  for (const arm of results.arms) {
    if (arm.scan === null) continue;
    const base = COMPARE_CHARTS.heatmap(arm.name);
    await renderChart(sensitivityHeatmapSpec(arm.scan, arm.selection?.choices), path.join(reportDir, base));
    heatmaps.set(arm.name, `${base}.png`);
  }
  await writeAtomic(path.join(reportDir, COMPARE_FILES.report), compareMarkdown(results, heatmaps));
  await writeAtomic(path.join(reportDir, COMPARE_FILES.csv), resultsCsv(results));
  out.result(
    `report: ${path.join(reportDir, COMPARE_FILES.report)} (results.json, results.csv, charts as SVG and PNG)`,
  );
}
