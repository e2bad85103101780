import path from 'node:path';
import { CIFAR10_CLASS_NAMES, CIFAR10_IMAGE_SHAPE } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { loadModel } from '@decompose/pipeline';
import {
  BUILT_PAGE_DIR,
  copyPage,
  type NodePredictions,
  PAGE_LAYER_CLASSES,
  prepareSite,
  type SiteServer,
  serveSite,
} from '@decompose/web';
import type * as tfl from '@tensorflow/tfjs-layers';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { addDataOptions, type CommandDeps, commandAction, numberOption } from './command.js';
import { dataFields, wholeNumber } from './config.js';
import { loadData } from './data.js';
import { describeEngine } from './engine-report.js';
import { ConfigError } from './errors.js';
import type { Console } from './progress.js';
import { locateTrainedModel } from './sensitivity/index.js';

/** Test images Node may classify for the comparison: one CIFAR-10 test batch. */
const MAX_SAMPLES = 10_000;

// The data flags of every command that reads images, less the training-set limit: the page shows test images only.
const { limitTrain: _, ...testDataFields } = dataFields;

/** `decompose web`. */
export const webConfigSchema = z
  .strictObject({
    /** The model before compression: its folder (holding model.json) or its run folder (holding model/). */
    original: z.string().min(1, 'original is the folder holding the original model.json'),
    /** The compressed model, as `decompose compress` wrote it (`<out>/model` or `<out>`). */
    compressed: z.string().min(1, 'compressed is the folder holding the compressed model.json'),
    /**
     * The images whose test split the page classifies: a CIFAR-10 folder in the binary layout (its test batch)
     * or an image folder (`<dir>/<class>/*.png|jpg`, resized to `inputSize` or the model's input size and
     * normalised with `normalize`); default the bundled CIFAR-10 subset.
     */
    ...testDataFields,
    /** Test images Node classifies, for comparing with the page's predictions. */
    samples: wholeNumber('samples', 1, MAX_SAMPLES).default(32),
    out: z.string().min(1).default('runs/web'),
    /** Serve `out` after preparing it, until interrupted. */
    serve: z.boolean().default(false),
    /** Port of `serve` (0 picks a free one); default 4173. */
    port: wholeNumber('port', 0, 65535, '0 picks a free one').optional(),
  })
  .refine((config) => config.port === undefined || config.serve, {
    message: 'port is used only with serve; add --serve',
    path: ['port'],
  })
  .refine((config) => config.data === undefined || !config.download, {
    message: 'give either data or download, not both',
    path: ['download'],
  });
/** A validated `decompose web` configuration, defaults filled in. */
export type WebConfig = z.output<typeof webConfigSchema>;

/** What `decompose web` produced. */
export interface WebResult {
  /** The folder holding the page and its files. */
  outDir: string;
  /** What Node predicted for the first test images (also in `<out>/node-predictions.json`). */
  predictions: NodePredictions;
  /** The running server with `serve`, else null; close it to let the process end. */
  server: SiteServer | null;
}

/** Where the page's built files come from (a test points it at a stand-in). */
export interface WebOptions {
  pageDir?: string;
}

/** Whether `name` is `layer` itself or a replacement surgery named after it (`layer_svd_kxk`, `layer.basis`). */
const namedAfter = (name: string, layer: string) => name === layer || name.startsWith(layer);

/**
 * Checks that `compressed` came from `original` by surgery: every layer of either is one of the other's or a
 * replacement named after it (BatchNorm and relu layers may be gone when the compressed model has no BatchNorm
 * left: `decompose export --fold-batch-norm` folded them), and every layer class is one of the original's or one
 * the page registers.
 *
 * @throws ConfigError naming both flags and the first layers that do not match.
 */
export function checkCompressedFrom(original: tfl.LayersModel, compressed: tfl.LayersModel): void {
  const originalNames = original.layers.map((layer) => layer.name);
  const compressedNames = compressed.layers.map((layer) => layer.name);
  const extra = compressedNames.filter((name) => !originalNames.some((layer) => namedAfter(name, layer)));
  // `decompose export --fold-batch-norm` folds BatchNorm (and the relu after it) into the convolution before it.
  const folded = (layer: tfl.layers.Layer) =>
    ['BatchNormalization', 'Activation', 'ReLU'].includes(layer.getClassName()) &&
    !compressed.layers.some((l) => l.getClassName() === 'BatchNormalization');
  const missing = original.layers
    .filter((layer) => !folded(layer))
    .map((layer) => layer.name)
    .filter((layer) => !compressedNames.some((name) => namedAfter(name, layer)));
  if (extra.length > 0 || missing.length > 0) {
    const listed = (names: string[]) => `${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}`;
    throw new ConfigError([
      '--compressed: this model was not compressed from --original (' +
        [
          extra.length > 0 ? `layers ${listed(extra)} are not in --original` : '',
          missing.length > 0 ? `layers ${listed(missing)} of --original have no counterpart` : '',
        ]
          .filter(Boolean)
          .join('; ') +
        '); pass the model that decompose compress read (its --model-dir) as --original',
    ]);
  }
  const known = new Set([...original.layers.map((layer) => layer.getClassName()), ...PAGE_LAYER_CLASSES]);
  const unknown = compressed.layers.filter((layer) => !known.has(layer.getClassName()));
  if (unknown.length > 0) {
    const classes = [...new Set(unknown.map((layer) => layer.getClassName()))].join(', ');
    throw new ConfigError([
      `--compressed: layer class ${classes} (e.g. layer ${unknown[0]!.name}) cannot load in the page, which registers ` +
        `only ${PAGE_LAYER_CLASSES.join(', ')} besides stock tfjs layers; compress with basis, svd or tucker to view it there`,
    ]);
  }
}

const shapeText = (shape: readonly (number | null)[]) => shape.map((d) => d ?? '?').join('×');

/**
 * Without `--data` (or `--download`) the page gets CIFAR-10 test images: a model of other images or classes
 * must be given its own, and this says how before any image is read.
 *
 * @throws ConfigError naming the model's input and classes and the flags to pass.
 */
function checkCifarDefault(config: WebConfig, model: tfl.LayersModel): void {
  if (config.data !== undefined || config.download) return;
  const input = model.inputs[0]?.shape.slice(1) ?? [];
  const classes = model.outputs[0]?.shape.at(-1);
  if (input.join() === CIFAR10_IMAGE_SHAPE.join() && classes === CIFAR10_CLASS_NAMES.length) return;
  const [height, width] = input;
  throw new ConfigError([
    `--data: not given, so the page would show CIFAR-10's 32×32×3 test images of 10 classes, but --original takes ` +
      `${shapeText(input)} images and gives ${classes ?? '?'} classes; pass your image folder, ` +
      `--data <dir> (one subfolder per class, as the model was trained on), with --input-size ${height ?? 'H'}x${width ?? 'W'} ` +
      "and the --normalize <mean,std> of its training (default ImageNet's)",
  ]);
}

/**
 * `decompose web`: fills `out` with the browser page, both models, the test images of `data` (CIFAR-10's or
 * an image folder's, with their class names and normalisation) and Node's predictions for the first `samples`
 * of them (see `@decompose/web`), then serves it with `serve`.
 */
export async function runWeb(config: WebConfig, out: Console, options: WebOptions = {}): Promise<WebResult> {
  const originalDir = (await locateTrainedModel(config.original, '--original')).modelDir;
  const compressedDir = (await locateTrainedModel(config.compressed, '--compressed')).modelDir;
  if (originalDir === compressedDir) {
    throw new ConfigError([
      `--compressed: got the same model as --original (${originalDir}); pass the model decompose compress wrote (its --out, or <out>/model)`,
    ]);
  }
  const engine = await initEngine();
  for (const line of describeEngine(engine, out.verbose)) out.log(line);
  const original = await loadModel(originalDir);
  let compressed: tfl.LayersModel | null = null;
  try {
    compressed = await loadModel(compressedDir);
    checkCompressedFrom(original, compressed);
    checkCifarDefault(config, original);
    // An image folder is resized to the model's input size unless --input-size says otherwise; prepareSite
    // then checks both models against the images' shape and classes, naming both, before writing anything.
    const data = await loadData(config, out, { modelInput: original.inputs[0]?.shape.slice(1) });
    const images = data.test;
    const imagesSource = data.kind === 'images' ? `${data.name}, test split` : `${data.name} ${data.dir}`;
    const [before, after] = [original.countParams(), compressed.countParams()];
    if (after > before) {
      out.warn(
        `warning: --compressed has more parameters (${after}) than --original (${before}); are the two swapped?`,
      );
    }
    const outDir = path.resolve(config.out);
    // prepareSite checks the models before it writes anything; the page goes in once the data is there.
    const predictions = await prepareSite({
      dir: outDir,
      original,
      compressed,
      images,
      imagesSource,
      sampleCount: config.samples,
    });
    await copyPage(outDir, options.pageDir ?? BUILT_PAGE_DIR);
    const { models } = predictions;
    out.result(
      `original:   ${originalDir} (${before} parameters, ${models.original.weightBytes} weight bytes)`,
    );
    out.result(
      `compressed: ${compressedDir} (${after} parameters, ${models.compressed.weightBytes} weight bytes)`,
    );
    out.result(
      `wrote the page, both models, ${images.count} test images (${imagesSource}) and Node's predictions for ` +
        `${predictions.sampleCount} of them to ${outDir}`,
    );
    if (!config.serve) {
      out.result(`view it: run this again with --serve, or serve ${outDir} with any static server`);
      return { outDir, predictions, server: null };
    }
    const server = await serveSite(outDir, { port: config.port });
    out.result(`serving ${outDir} on ${server.url} (Ctrl-C to stop)`);
    return { outDir, predictions, server };
  } finally {
    original.dispose();
    compressed?.dispose();
  }
}

const num = numberOption;

/** Adds `decompose web` to the program. */
export function registerWebCommand(program: Command, deps: CommandDeps): Command {
  const command = addDataOptions(
    program
      .command('web')
      .description(
        'Prepare the browser page for a compressed model and its original (both models, the test images, Node predictions to compare with) and optionally serve it.',
      )
      .addOption(new Option('--config <file>', 'YAML or JSON file of options; flags override it'))
      .option(
        '--original <dir>',
        'the model before compression (folder holding model.json, or its run folder)',
      )
      .option(
        '--compressed <dir>',
        'the compressed model (e.g. the --out of decompose compress, or <out>/model)',
      ),
    { trainingImages: false },
  )
    .addOption(num('--samples <n>', 'test images Node classifies for the comparison (default 32)'))
    .option('--out <dir>', 'output folder: the page and its files (default runs/web)')
    .option('--serve', 'serve the folder on 127.0.0.1 after preparing it, until Ctrl-C')
    .addOption(num('--port <port>', 'port of --serve; 0 picks a free one (default 4173)'))
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ decompose web --original runs/r20/model --compressed runs/r20-basis --serve',
        '  $ decompose web --original runs/r20 --compressed runs/r20-svd/model --samples 64 --out runs/r20-svd/site',
        '  $ decompose web --original runs/pets/model --compressed runs/pets-basis --data ~/pets --input-size 48x48 \\',
        '      --normalize 0.485,0.456,0.406,0.229,0.224,0.225 --serve',
        '',
      ].join('\n'),
    );
  return commandAction(command, webConfigSchema, runWeb, deps);
}
