import path from 'node:path';
import { initEngine } from '@decompose/engine';
import { probeRedis } from '@decompose/jobs';
import {
  loadModel,
  modelPlugins,
  readModelInputShape,
  resolveCalibration,
  resolveStrategy,
} from '@decompose/pipeline';
import {
  type Budget,
  type Selection,
  type SensitivityMetric,
  type SensitivityTable,
  selectGreedy,
  selectPerLayer,
  sensitivityCsv,
} from '@decompose/sensitivity';
import { type Command, Option } from 'commander';
import { renderChart } from '../charts.js';
import { addDataOptions, type CommandDeps, commandAction, numberOption } from '../command.js';
import { loadData } from '../data.js';
import { describeEngine } from '../engine-report.js';
import { queueAddress } from '../executor.js';
import { ensureDirectory, writeAtomic, writeJsonAtomic } from '../files.js';
import type { Console } from '../progress.js';
import { sensitivityHeatmapSpec } from '../report/charts.js';
import { formatSelection, metricWording } from '../report/selection.js';
import { type SensitivityConfig, sensitivityConfigSchema } from './config.js';
import { runScan, scanWorkerCount } from './scan.js';
import { locateTrainedModel } from './trained.js';

export { calibrationSplit } from '@decompose/pipeline';

/** Files `decompose sensitivity` writes under `--out`. */
export const SENSITIVITY_FILES = {
  table: 'sensitivity.json',
  csv: 'sensitivity.csv',
  heatmap: 'sensitivity-heatmap',
  cache: 'scan-cache.jsonl',
  selection: 'selection.json',
  log: 'sensitivity.log',
} as const;

/** What `decompose sensitivity` produced. */
export interface SensitivityResult {
  table: SensitivityTable;
  selection: Selection | null;
  /** Seed of the calibration split. */
  seed: number;
  /** Images the scan measured on. */
  calibrationSize: number;
  /** Worker threads the scan ran on (0: this thread, or the queue's workers with `--queue`). */
  workers: number;
  outDir: string;
}

/** The selector of a config (`greedy` or `per-layer`) applied to a table, ranking by `metric`. */
export function select(
  table: SensitivityTable,
  budget: Budget,
  selector: 'greedy' | 'per-layer',
  metric: SensitivityMetric,
): Selection {
  return selector === 'greedy'
    ? selectGreedy(table, budget, { metric })
    : selectPerLayer(table, budget, { metric });
}

/**
 * How a selection was reached, beyond the explanation table: its metric, the per-layer search's accepted
 * sensitivity, and for a reduction budget what was asked, reached before trimming and achieved.
 */
export function selectionDetails(selection: Selection): string {
  const byAccuracy = selection.metric === 'accuracy';
  const { name: metric, format: inUnits } = metricWording(selection.metric);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const parts = [`ranked by calibration ${metric}`];
  if (selection.threshold !== undefined)
    parts.push(`accepted per-layer ${metric} ${inUnits(selection.threshold)}`);
  const { budget, reduction } = selection;
  if (budget.kind === 'reduction') {
    const achieved = { params: reduction.params, macs: reduction.macs, time: reduction.time ?? 0 }[
      budget.target
    ];
    const untrimmed = selection.untrimmedReduction;
    parts.push(
      `${budget.target} removed ${pct(achieved)} for a target of ${pct(budget.reduction)}` +
        (untrimmed !== undefined && untrimmed !== achieved ? ` (${pct(untrimmed)} before trimming)` : ''),
    );
  } else {
    if (selection.method === 'greedy') parts.push(`total ${metric} at most ${inUnits(budget.maxDrop)}`);
    parts.push(
      `estimated total ${metric} ${inUnits(byAccuracy ? selection.estimatedDrop : selection.estimatedLossIncrease)}`,
    );
  }
  return `${parts.join('; ')}; budget ${selection.met ? 'met' : 'NOT met'}`;
}

/**
 * `decompose sensitivity`: the layer × ratio scan of a trained model on a calibration split of the training
 * data (by default the images its training run held out; see {@link resolveCalibration}), resumable through
 * `<out>/scan-cache.jsonl`; writes the table (JSON, CSV), its heatmap (SVG, PNG) and, with a budget, the
 * selection and its explanation.
 */
export async function runSensitivity(config: SensitivityConfig, out: Console): Promise<SensitivityResult> {
  const outDir = path.resolve(config.out);
  // An unreachable Redis fails before anything is written to --out.
  if (config.queue !== undefined) await probeRedis(config.queue);
  await ensureDirectory(outDir);
  out.logTo(path.join(outDir, SENSITIVITY_FILES.log));
  try {
    const trained = await locateTrainedModel(config.modelDir, '--model-dir');
    const { strategy } = await resolveStrategy(config.strategy, '--strategy');
    const engine = await initEngine();
    for (const line of describeEngine(engine, out.verbose)) out.log(line);
    const data = await loadData(config, out, { modelInput: await readModelInputShape(trained.modelDir) });
    const { calibration, rest, seed, description, warning } = resolveCalibration(
      data.train,
      trained,
      { count: config.calibration, seed: config.seed },
      { count: '--calibration', model: '--model-dir' },
    );
    out.log(`calibration split: ${description}`);
    if (warning !== null) out.warn(warning);
    const model = await loadModel(trained.modelDir);
    try {
      const table = await runScan(
        {
          model,
          strategy,
          strategySpecifier: config.strategy,
          modelPlugins: await modelPlugins(trained.modelDir),
          layers: config.layers,
          ratios: config.ratios,
          calibration,
          fineTuneData: rest,
          fineTuneSteps: config.fineTuneSteps,
          fineTuneLr: config.fineTuneLr,
          measureTime: config.measureTime,
          batch: config.batch,
          seed,
          cacheFile: path.join(outDir, SENSITIVITY_FILES.cache),
          layersField: '--layers',
          workers: config.workers,
          ...(config.queue === undefined ? {} : { queue: queueAddress(config) }),
        },
        out,
      );
      await writeJsonAtomic(path.join(outDir, SENSITIVITY_FILES.table), table);
      await writeAtomic(path.join(outDir, SENSITIVITY_FILES.csv), sensitivityCsv(table));

      out.result(
        `scan done in ${table.seconds.toFixed(1)}s: ${table.entries.length} entries; ` +
          `wrote ${SENSITIVITY_FILES.table}, ${SENSITIVITY_FILES.csv}, ${SENSITIVITY_FILES.heatmap}.svg/.png to ${outDir}`,
      );
      const selection =
        config.budget === undefined ? null : select(table, config.budget, config.selector, config.metric);
      await renderChart(
        sensitivityHeatmapSpec(table, selection?.choices),
        path.join(outDir, SENSITIVITY_FILES.heatmap),
      );
      if (selection !== null) {
        await writeJsonAtomic(path.join(outDir, SENSITIVITY_FILES.selection), {
          strategy: table.strategy,
          modelDir: trained.modelDir,
          ...selection,
        });
        for (const line of formatSelection(selection)) out.result(line);
        out.result(selectionDetails(selection));
        out.result(
          `wrote ${path.join(outDir, SENSITIVITY_FILES.selection)} (use it with compress --selection)`,
        );
      }
      return {
        table,
        selection,
        seed,
        calibrationSize: calibration.count,
        workers: config.queue === undefined ? scanWorkerCount(config, table.layers.length) : 0,
        outDir,
      };
    } finally {
      model.dispose();
    }
  } finally {
    out.logTo(null);
  }
}

const num = numberOption;

/** Adds `decompose sensitivity` to the program. */
export function registerSensitivityCommand(program: Command, deps: CommandDeps): Command {
  const command = program
    .command('sensitivity')
    .description(
      'Layer-by-layer sensitivity scan of a trained model (one layer decomposed at a time, each ratio, measured on a calibration split of the training data); optional selection for a budget.',
    )
    .addOption(new Option('--config <file>', 'YAML or JSON file of options; flags override it'))
    .option('--model-dir <dir>', 'the trained model (folder holding model.json, or the training run folder)')
    .option('--strategy <name>', 'basis | svd | tucker, or a plugin package name or file path')
    .option('--ratios <list>', 'comma-separated ratios to try (default 0.25,0.5,0.75)')
    .option(
      '--layers <globs>',
      'comma-separated layer names or globs (default: every Conv2D and Dense layer the strategy supports)',
    )
    .addOption(
      num(
        '--calibration <n>',
        'training images to measure on (default: those the training run held out with --hold-out, else 500 split anew)',
      ),
    )
    .addOption(
      num('--fine-tune-steps <k>', 'SGD steps after each decomposition before measuring (default 0)'),
    )
    .addOption(num('--fine-tune-lr <rate>', 'learning rate of those steps (default 0.01)'))
    .option('--measure-time', 'measure forward+backward time of each entry (enables time: budgets)')
    .option(
      '--budget <budget>',
      'params:F | macs:F | time:F (remove fraction F) | drop:D (max sensitivity in --metric units)',
    )
    .option('--selector <kind>', 'greedy | per-layer (default greedy)')
    .option(
      '--metric <name>',
      'accuracy | loss: sensitivity is the calibration accuracy drop or loss increase; drop:D is in its units (default accuracy)',
    )
    .addOption(
      num(
        '--workers <n>',
        'worker threads to split the scanned layers over (default: one per core; 0 or 1: this thread); with --fine-tune-steps or --measure-time the scan stays on this thread',
      ),
    )
    .option(
      '--queue <url>',
      'redis://HOST:PORT[/DB]: run the scan on `decompose worker` processes through this Redis (default: locally)',
    )
    .option('--queue-name <name>', 'the queue the workers take units from (default decompose)')
    .addOption(num('--batch <n>', 'batch size of the fine-tune steps (default 128)'))
    .addOption(
      num('--seed <s>', "seed of a new calibration split (default: the hold-out's, else the training run's)"),
    );
  addDataOptions(command)
    .option('--out <dir>', 'output folder')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ decompose sensitivity --model-dir runs/r20/model --strategy basis --ratios 0.25,0.5,0.75 --out runs/r20-scan',
        "  $ decompose sensitivity --model-dir runs/r20 --strategy svd --layers 'stage2.*.conv*,stage3.*.conv*' --calibration 500 --fine-tune-steps 20 --budget params:0.4 --selector per-layer --out runs/r20-svd-scan",
        '',
      ].join('\n'),
    );
  return commandAction(command, sensitivityConfigSchema, runSensitivity, deps);
}
