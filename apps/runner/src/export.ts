import path from 'node:path';
import { costTable, exportStock, type LoweredLayer, maxOutputDifference } from '@decompose/core';
import { initEngine } from '@decompose/engine';
import { BUILT_IN_STRATEGIES, loadModel, loadPlugin, modelPlugins, saveModel } from '@decompose/pipeline';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { type CommandDeps, commandAction, numberOption } from './command.js';
import { batchField, seedField } from './config.js';
import { describeEngine } from './engine-report.js';
import { ConfigError, RunnerError } from './errors.js';
import type { Console } from './progress.js';
import { locateTrainedModel } from './sensitivity/index.js';
import { formatCount, formatTable } from './table.js';

/** The largest difference between the outputs of the model and its export that `decompose export` accepts. */
export const EXPORT_TOLERANCE = 1e-4;

/** `decompose export`. */
export const exportConfigSchema = z.strictObject({
  /** The model to export: a folder holding model.json, or a run folder holding model/ (e.g. compress's --out). */
  modelDir: z.string().min(1, 'modelDir is the folder holding model.json'),
  /** The folder to write the stock model to (model.json + weights.bin). */
  out: z.string().min(1, 'out is the folder to write the exported model to'),
  /** Fold BatchNorm (and a relu after it) into the convolution before it, for inference. */
  foldBatchNorm: z.boolean().default(false),
  /** Random images both models classify for the output check. */
  batch: batchField().default(8),
  /** Seed of those images. */
  seed: seedField('seed').default(0),
  json: z.boolean().default(false),
});
/** A validated `decompose export` configuration, defaults filled in. */
export type ExportConfig = z.output<typeof exportConfigSchema>;

/** Parameters and forward multiply-adds per image of a model (core's `costTable`). */
export interface ModelCost {
  params: number;
  forwardMacs: number;
}

/** What `decompose export` did (`--json` prints exactly this). */
export interface ExportSummary {
  modelDir: string;
  out: string;
  foldBatchNorm: boolean;
  /** The custom layers lowered to stock layers, and their replacements. */
  lowered: LoweredLayer[];
  before: ModelCost;
  after: ModelCost;
  /** Both models run on the same random images: the largest absolute difference of their outputs. */
  check: { images: number; seed: number; maxAbsDifference: number; tolerance: number };
}

/** The exported model's outputs differ from the model's: a lowering is wrong. Nothing was written. */
export class ExportMismatchError extends RunnerError {
  override readonly name = 'ExportMismatchError';
  constructor(
    readonly modelDir: string,
    readonly maxAbsDifference: number,
    readonly lowered: readonly LoweredLayer[],
  ) {
    const classes = [...new Set(lowered.map((l) => l.className))].join(', ') || 'none';
    super(
      `The stock export of ${modelDir} computes other outputs than the model: they differ by up to ` +
        `${maxAbsDifference.toExponential(2)} (more than ${EXPORT_TOLERANCE}) on random images. The lowering of ` +
        `the custom layers (${classes}) is wrong; nothing was written. Export without --fold-batch-norm to see ` +
        'whether the folding is the cause, and report the problem to the package of those layers.',
    );
  }
}

/** Random images of every input's shape; a model input of unknown size cannot be checked. */
function randomInputs(model: tfl.LayersModel, batch: number, seed: number): tf.Tensor[] {
  return model.inputs.map((input, i) => {
    const shape = input.shape.slice(1);
    if (shape.some((d) => d === null)) {
      throw new ConfigError([
        `--model-dir: input '${input.name}' has an unknown size ${JSON.stringify(input.shape)}; ` +
          'export needs a model whose inputs have a fixed size to check the export',
      ]);
    }
    return tf.randomNormal([batch, ...(shape as number[])], 0, 1, 'float32', seed + i);
  });
}

function costOf(model: tfl.LayersModel, strategies: typeof BUILT_IN_STRATEGIES): ModelCost {
  const { total } = costTable(model, { strategies });
  return { params: total.params, forwardMacs: total.forwardMacs };
}

/**
 * `decompose export`: loads a model (importing the plugins its plugins.json names), rewrites every custom layer
 * into stock tfjs layers (core's `exportStock`, with the lowerings of the built-in strategies' layers and the
 * plugins'), checks that both give the same outputs on random images, and saves the stock model atomically.
 */
export async function runExport(config: ExportConfig, out: Console): Promise<ExportSummary> {
  const modelDir = (await locateTrainedModel(config.modelDir, '--model-dir')).modelDir;
  const outDir = path.resolve(config.out);
  if (outDir === modelDir) {
    throw new ConfigError([
      `--out: got the folder of --model-dir (${modelDir}); write the export to another folder`,
    ]);
  }
  const engine = await initEngine();
  for (const line of describeEngine(engine, out.verbose)) out.log(line);
  const plugins = await modelPlugins(modelDir);
  const strategies = [...BUILT_IN_STRATEGIES];
  for (const plugin of plugins) strategies.push(...(await loadPlugin(plugin)));
  const model = await loadModel(modelDir);
  let stock: tfl.LayersModel | null = null;
  const inputs: tf.Tensor[] = [];
  try {
    const exported = exportStock(model, { strategies, foldBatchNorm: config.foldBatchNorm });
    stock = exported.model;
    inputs.push(...randomInputs(model, config.batch, config.seed));
    const difference = maxOutputDifference(model, stock, inputs);
    if (!(difference <= EXPORT_TOLERANCE)) {
      throw new ExportMismatchError(modelDir, difference, exported.lowered);
    }
    const summary: ExportSummary = {
      modelDir,
      out: outDir,
      foldBatchNorm: config.foldBatchNorm,
      lowered: exported.lowered,
      before: costOf(model, strategies),
      after: costOf(stock, strategies),
      check: {
        images: config.batch,
        seed: config.seed,
        maxAbsDifference: difference,
        tolerance: EXPORT_TOLERANCE,
      },
    };
    await saveModel(stock, outDir);
    for (const line of formatExport(summary)) out.result(line);
    return summary;
  } finally {
    tf.dispose(inputs);
    stock?.dispose();
    model.dispose();
  }
}

/** The human-readable lines of an export summary. */
export function formatExport(summary: ExportSummary): string[] {
  const counts = new Map<string, number>();
  for (const { className } of summary.lowered) counts.set(className, (counts.get(className) ?? 0) + 1);
  const lowered =
    counts.size === 0
      ? 'no custom layers (already stock)'
      : [...counts].map(([className, n]) => `${n} ${className}`).join(', ');
  const change = (key: keyof ModelCost) => {
    const ratio = summary.after[key] / summary.before[key];
    return Number.isFinite(ratio) ? `${((ratio - 1) * 100).toFixed(1)} %` : '-';
  };
  return [
    `${summary.modelDir}: lowered ${lowered} to stock layers${summary.foldBatchNorm ? ', BatchNorm folded' : ''}`,
    ...formatTable(
      [{ heading: '' }, { heading: 'params', align: 'right' }, { heading: 'MACs/image', align: 'right' }],
      [
        ['before', formatCount(summary.before.params), formatCount(summary.before.forwardMacs)],
        ['after', formatCount(summary.after.params), formatCount(summary.after.forwardMacs)],
        ['change', change('params'), change('forwardMacs')],
      ],
    ),
    `outputs match: max abs difference ${summary.check.maxAbsDifference.toExponential(2)} on ` +
      `${summary.check.images} random images (tolerance ${summary.check.tolerance})`,
    `wrote ${summary.out} (model.json + weights.bin; stock tfjs layers only, loads with tf.loadLayersModel)`,
  ];
}

const num = numberOption;

/** Adds `decompose export` to the program. */
export function registerExportCommand(program: Command, deps: CommandDeps): Command {
  const command = program
    .command('export')
    .description(
      'Rewrite a compressed model into stock tfjs layers only (BasisConv2D becomes a k×k and a 1×1 Conv2D), check that it gives the same outputs, and save it: it loads with a plain tf.loadLayersModel, tfjs-converter or Keras.',
    )
    .addOption(new Option('--config <file>', 'YAML or JSON file of options; flags override it'))
    .option('--model-dir <dir>', 'the model (folder holding model.json, or the --out of decompose compress)')
    .option('--out <dir>', 'folder to write the stock model to (model.json + weights.bin)')
    .option(
      '--fold-batch-norm',
      'fold BatchNorm (and a relu after it) into the convolution before it, for inference',
    )
    .addOption(num('--batch <n>', 'random images both models classify for the output check (default 8)'))
    .addOption(num('--seed <s>', 'seed of those images (default 0)'))
    .option('--json', 'print the summary as one JSON document, the only output on stdout')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ decompose export --model-dir runs/r20-basis --out runs/r20-basis/stock',
        '  $ decompose export --model-dir runs/r20-basis/model --out runs/r20-basis-inference --fold-batch-norm --json',
        '',
      ].join('\n'),
    );
  return commandAction(command, exportConfigSchema, runExport, deps);
}
