import type { Command } from 'commander';
import { z } from 'zod';
import { type CommandDeps, commandAction } from '../command.js';
import { queueFields } from '../config.js';
import type { Console } from '../progress.js';
import { type CompareConfigInput, compareConfigSchema } from './config.js';
import type { CompareResults } from './results.js';
import { runCompare } from './run.js';

/**
 * The demo: a ResNet-20 baseline trained briefly on the bundled CIFAR-10 subset, a sensitivity scan, and four
 * arms — basis convolutions on the layers a scan selects for a 40 % parameter budget, basis on every layer, SVD,
 * and the Tucker plugin (loaded by package name) — each with its BatchNorm statistics re-estimated on the
 * default 1,024 augmented training images, then fine-tuned with one recipe. Sized to finish in about 15
 * minutes on 2 quiet cores with the wasm backend: baseline about 5 min, scan (57 entries on 500 calibration
 * images) about 2 min, four fine-tunes of 2 epochs about 7.5 min, four re-estimations with their test
 * evaluations under a minute (about 18 s each on 2 busy cores), measurements and charts under a minute.
 */
/** Every convolution of a ResNet (`stem.conv`, `stage*.block*.conv*`, `*.shortcut.conv`), not its Dense head. */
const CONVOLUTIONS = '**.conv*';

export const DEMO_PRESET = {
  run: 'demo',
  // Workers follow the default, one per core: on two idle cores about 200 img/s for ResNet-20 at batch 64 (one
  // thread: about 110), so an epoch of the 5,085-image subset plus its test evaluation takes under half a minute.
  baseline: { model: 'resnet20', epochs: 8, batch: 64, lr: 0.1, schedule: 'cosine', seed: 0 },
  fineTune: { epochs: 2, batch: 64, lr: 0.01, schedule: 'cosine', seed: 0 },
  measure: { batch: 32, steps: 3 },
  arms: [
    {
      name: 'basis-selected',
      strategy: 'basis',
      select: { budget: 'params:0.4', selector: 'greedy', ratios: [0.25, 0.5, 0.75], calibration: 500 },
      // The scan's candidates: every convolution, as the arms below (the default would add the Dense head).
      layers: CONVOLUTIONS,
    },
    // Every convolution, not the default (every layer the strategy supports): Tucker has no Dense
    // rewrite, so the arms compare the same layers, and the 10-logit head stays dense.
    { name: 'basis-all', strategy: 'basis', options: { ratio: 0.5 }, layers: CONVOLUTIONS },
    { name: 'svd-all', strategy: 'svd', options: { ratio: 0.5 }, layers: CONVOLUTIONS },
    {
      name: 'tucker-all',
      strategy: 'decompose-plugin-tucker',
      options: { ratio: 0.5 },
      layers: CONVOLUTIONS,
    },
  ],
} satisfies CompareConfigInput;

/**
 * `decompose demo`: {@link runCompare} on `preset` ({@link DEMO_PRESET}; fields of `overrides` replace the
 * preset's, e.g. `{ reportDir, limitTrain }` or `{ queue }`), writing `reports/demo/`.
 */
export function runDemo(
  out: Console,
  overrides: Partial<CompareConfigInput> = {},
  preset: CompareConfigInput = DEMO_PRESET,
): Promise<CompareResults> {
  return runCompare(compareConfigSchema.parse({ ...preset, ...overrides }), out);
}

/** `decompose demo`: where its units run (`--queue`, `--queue-name`); the rest is the preset. */
export const demoConfigSchema = z.strictObject(queueFields);
export type DemoConfig = z.output<typeof demoConfigSchema>;

/**
 * Adds `decompose demo` to the program: {@link runDemo} on `preset` (the tests give a smaller one), in this
 * process or, with `--queue`, as units on `decompose worker` processes.
 */
export function registerDemoCommand(
  program: Command,
  deps: CommandDeps,
  preset: CompareConfigInput = DEMO_PRESET,
): Command {
  const command = program
    .command('demo')
    .description(
      "The README's main job on the embedded defaults: train a small ResNet-20 baseline on the bundled subset, scan layer sensitivity, compare basis convolutions (selected and all layers), SVD and the Tucker plugin, and write the report to reports/demo.",
    )
    .option(
      '--queue <url>',
      'run the baseline training, the scan and the arms as units on this Redis queue, redis://HOST:PORT[/DB], taken by `decompose worker --queue` processes (default: in this process)',
    )
    .option('--queue-name <name>', 'the queue the workers take units from (default decompose)')
    .addHelpText(
      'after',
      ['', 'Examples:', '  $ decompose demo', '  $ decompose demo --queue redis://10.0.0.5:6379', ''].join(
        '\n',
      ),
    );
  return commandAction(
    command,
    demoConfigSchema,
    (config: DemoConfig, out) => runDemo(out, config, preset),
    deps,
  );
}
