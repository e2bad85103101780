import { type Command, Option } from 'commander';
import { addDataOptions, type CommandDeps, commandAction } from '../command.js';
import { compareConfigSchema } from './config.js';
import { runCompare } from './run.js';

/** Adds `decompose compare` to the program. */
export function registerCompareCommand(program: Command, deps: CommandDeps): Command {
  const command = program
    .command('compare')
    .description(
      'Compare compression strategies on one trained baseline: each arm is compressed (by layer glob or by a sensitivity-based selection), fine-tuned with the same recipe and measured; writes a report with a leaderboard and charts. Re-running skips finished arms.',
    )
    .addOption(
      new Option('--config <file>', 'YAML or JSON file: baseline, fineTune, measure, arms (required)'),
    )
    .option('--run <name>', 'name of the report folder (default: the config\'s run, else "compare")')
    .option('--report-dir <dir>', 'where report folders go (default reports)')
    .option(
      '--queue <url>',
      'run the baseline training and the arms as units on this Redis queue, redis://HOST:PORT[/DB], taken by `decompose worker --queue` processes (default: in this process)',
    )
    .option('--queue-name <name>', 'the queue the workers take units from (default decompose)');
  addDataOptions(command).addHelpText(
    'after',
    [
      '',
      'Examples:',
      '  $ decompose compare --config compare.yaml',
      '  $ decompose compare --config compare.yaml --run r20-basis-vs-svd --report-dir reports',
      '  $ decompose compare --config compare.yaml --queue redis://10.0.0.5:6379',
      '  $ decompose compare --config mine.yaml --data photos/ --input-size 64x64 --test-fraction 0.25',
      '',
      'compare.yaml:',
      '  baseline: { model: resnet20, epochs: 15, lr: 0.1 }     # or { modelDir: runs/r20/model }',
      '  fineTune: { epochs: 2, lr: 0.01, schedule: cosine }   # the same for every arm',
      '  arms:',
      '    - { name: basis-sel, strategy: basis, select: { budget: "params:0.4", selector: greedy, ratios: [0.25, 0.5, 0.75], calibration: 500 } }',
      '    - { name: svd-half, strategy: svd, options: { ratio: 0.5 }, layers: "stage2.*.conv*,stage3.*.conv*" }',
      '    - { name: tucker, strategy: decompose-plugin-tucker, options: { ratio: 0.5 } }',
      '',
    ].join('\n'),
  );
  return commandAction(command, compareConfigSchema, runCompare, deps);
}
