import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { runBench } from './bench.js';
import { addDataOptions, type CommandDeps, commandAction, numberOption, outputOptions } from './command.js';
import { registerCompareCommand, registerDemoCommand } from './compare/index.js';
import { runCompress } from './compress.js';
import {
  benchConfigSchema,
  compressConfigSchema,
  DEFAULT_BN_IMAGES,
  evalConfigSchema,
  inspectConfigSchema,
  numberArg,
  trainConfigSchema,
} from './config.js';
import { EXIT_USAGE, reportError } from './errors.js';
import { runEval } from './eval.js';
import { registerExportCommand } from './export.js';
import { runInspect } from './inspect.js';
import { registerSensitivityCommand } from './sensitivity/index.js';
import { formatSmoke, runSmoke } from './smoke.js';
import { runTrain } from './train.js';
import { registerWebCommand } from './web.js';
import { registerWorkerCommand } from './worker.js';

/** Where the program writes: log lines, error lines, and whether progress bars may be drawn. */
export interface ProgramIo {
  print: (line: string) => void;
  printError: (line: string) => void;
  tty?: boolean;
}

const defaultIo: ProgramIo = { print: console.log, printError: console.error };

const num = numberOption;

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`;
}

function addModelOptions(command: Command): Command {
  return command
    .option(
      '--model <arch>',
      'resnet20 | resnet32 | resnet44 | resnet56 | resnet110 | resnet18 (default resnet20)',
    )
    .option('--shortcut <kind>', 'A (zero-padding identity) | B (1x1 projection) (default: per architecture)')
    .option('--init <scheme>', 'he-normal | pytorch weight initialisation');
}

function addSgdOptions(command: Command, defaultLr: string): Command {
  return command
    .addOption(num('--batch <n>', 'batch size (default 128)'))
    .addOption(num('--lr <rate>', `peak learning rate (default ${defaultLr})`))
    .addOption(num('--momentum <m>', 'SGD momentum (default 0.9)'))
    .option('--nesterov', 'Nesterov momentum')
    .option('--no-nesterov', 'plain momentum (overrides the config file)')
    .addOption(num('--weight-decay <l>', 'L2 weight decay (default 5e-4)'))
    .option('--decay-on <scope>', 'all | kernels: which weights decay (default all)')
    .option('--schedule <kind>', 'cosine | step | constant (default cosine)')
    .option(
      '--milestones <epochs>',
      'step schedule: comma-separated epochs (default half and three quarters)',
      (v) => v.split(',').map(numberArg),
    )
    .addOption(num('--gamma <g>', 'step schedule: factor at each milestone (default 0.1)'))
    .addOption(num('--warmup-epochs <k>', 'linear warm-up epochs, fractions allowed (default 0)'))
    .addOption(num('--label-smoothing <e>', 'label smoothing in [0, 1) (default 0)'))
    .option('--augment', 'pad-4 random crop and flip (default)')
    .option('--no-augment', 'no augmentation')
    .addOption(
      num(
        '--workers <n>',
        'gradient worker threads; 0 computes on the main thread (default: one per core; 0 on a single core)',
      ),
    )
    .addOption(num('--seed <s>', 'seed of initialisation, shuffling and augmentation (default 0)'));
}

/** The runner's version, from its package.json (the parent folder of both src/ and dist/). */
function runnerVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

/** Runs a command's work, turning any failure into output and an exit code (see {@link reportError}). */
type Guard = (work: () => Promise<unknown>) => Promise<void>;

/** The `decompose` program; `setExit` receives the exit code of a failed command. */
export function createProgram(io: ProgramIo, setExit: (code: number) => void): Command {
  const program = new Command('decompose')
    .description('Compress convolutional networks by matrix decomposition of their convolution weights.')
    .configureOutput({ writeOut: (s) => io.print(s.trimEnd()), writeErr: (s) => io.printError(s.trimEnd()) })
    .version(runnerVersion(), '-V, --version', "print decompose's version")
    .option('-q, --quiet', 'print only warnings, errors and the result: no progress, no informational lines')
    .option('--verbose', 'print full reasons, e.g. why a better backend was skipped and how to fix it')
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  const guarded: Guard = async (work) => {
    try {
      await work();
    } catch (error) {
      setExit(reportError(error, io.printError));
    }
  };
  const deps: CommandDeps = { io, setExit };
  const configOption = () => new Option('--config <file>', 'YAML or JSON file of options; flags override it');

  commandAction(
    addSgdOptions(
      addDataOptions(
        addModelOptions(
          program
            .command('train')
            .description(
              'Train a CIFAR ResNet from scratch with SGD; writes checkpoints, model/, summary.json and train.log to --out.',
            )
            .addOption(configOption()),
        ),
      ),
      '0.1',
    )
      .addOption(num('--epochs <n>', 'epochs (default 15)'))
      .option('--out <dir>', 'output folder (default runs/<model>)')
      .option('--resume', "continue from --out's newest checkpoint (same settings required)")
      .addOption(
        num(
          '--hold-out <n>',
          'keep n training images out of training as a stratified calibration split, recorded in summary.json for decompose sensitivity',
        ),
      )
      .addOption(num('--hold-out-seed <s>', 'seed of that split (default --seed)'))
      .option(
        '--queue <url>',
        'train as a unit on this Redis queue, redis://HOST:PORT[/DB], taken by a `decompose worker --queue` process (default: in this process)',
      )
      .option('--queue-name <name>', 'the queue the workers take units from (default decompose)')
      .addHelpText(
        'after',
        examples(
          'decompose train --model resnet20 --shortcut B --epochs 15 --out runs/r20',
          'decompose train --epochs 15 --hold-out 500 --out runs/r20-held',
          'decompose train --config train.yaml --lr 0.05 --resume',
          'decompose train --epochs 1 --limit-train 512 --limit-test 256 --out /tmp/smoke',
        ),
      ),
    trainConfigSchema,
    runTrain,
    deps,
  );

  commandAction(
    addDataOptions(
      program
        .command('eval')
        .description('Test loss, accuracy and images/s of a saved model.')
        .addOption(configOption())
        .option('--model-dir <dir>', 'folder holding model.json (e.g. runs/r20/model)'),
    )
      .addOption(num('--batch <n>', 'evaluation batch size (default 128)'))
      .option('--json', 'print the result as one JSON document, the only output on stdout')
      .addHelpText(
        'after',
        examples(
          'decompose eval --model-dir runs/r20/model',
          'decompose eval --model-dir runs/r20/model --json',
        ),
      ),
    evalConfigSchema,
    runEval,
    deps,
  );

  commandAction(
    addModelOptions(
      program
        .command('inspect')
        .description(
          'Per-layer table of a model: class, output shape, parameters, forward MACs, measured forward and forward+backward time.',
        )
        .addOption(configOption())
        .option('--model-dir <dir>', 'a saved model (default: build --model fresh)'),
    )
      .option('--json', 'print the report as one JSON document, the only output on stdout')
      .option('--timing', 'measure layer times (default)')
      .option('--no-timing', 'costs only, no measurement')
      .addOption(num('--batch <n>', 'images per timed call (default 32)'))
      .addOption(num('--repeats <n>', 'timed calls per layer; the median is reported (default 5)'))
      .addHelpText(
        'after',
        examples(
          'decompose inspect --model resnet20',
          'decompose inspect --model-dir runs/r20-basis/model --json',
        ),
      ),
    inspectConfigSchema,
    runInspect,
    deps,
  );

  commandAction(
    addSgdOptions(
      addDataOptions(
        program
          .command('compress')
          .description(
            'Rewrite the convolutions of a saved model with one decomposition strategy, optionally fine-tune, and save it.',
          )
          .addOption(configOption())
          .option('--model-dir <dir>', 'the trained model (folder holding model.json)')
          .option('--strategy <name>', 'basis | svd | tucker, or a plugin package name or file path')
          .option('--options <json>', "the strategy's options as JSON, e.g. '{\"ratio\":0.5}'")
          .addOption(num('--ratio <r>', 'shorthand for --options \'{"ratio":r}\''))
          .option(
            '--layers <globs>',
            'comma-separated layer names or globs (default: every layer the strategy supports, Dense included)',
          )
          .option('--selection <file>', 'per-layer options from a selection file (decompose sensitivity)')
          .option('--init-from <mode>', 'trained (fit to the weights, default) | scratch')
          .addOption(num('--fine-tune-epochs <n>', 'epochs of fine-tuning after surgery (default 0)'))
          .addOption(
            num(
              '--bn-images <n>',
              `re-estimate the BatchNorm statistics on n augmented training images right after surgery; 0 keeps the model's (default ${DEFAULT_BN_IMAGES})`,
            ),
          )
          .option('--out <dir>', 'output folder: model/, summary.json')
          .option('--json', 'print the summary as one JSON document, the only output on stdout'),
      ),
      '0.01',
    ).addHelpText(
      'after',
      examples(
        'decompose compress --model-dir runs/r20/model --strategy basis --ratio 0.5 --out runs/r20-basis',
        "decompose compress --model-dir runs/r20/model --strategy svd --options '{\"energy\":0.9}' --layers 'stage3.*.conv*' --fine-tune-epochs 2 --out runs/r20-svd",
        'decompose compress --model-dir runs/r20/model --strategy ./my-plugin.js --ratio 0.5 --out runs/r20-mine',
      ),
    ),
    compressConfigSchema,
    runCompress,
    deps,
  );

  commandAction(
    addModelOptions(
      program
        .command('bench')
        .description(
          'Quick training (forward+backward) and inference throughput of a model on random images; the full benchmarks are `pnpm bench:*`.',
        )
        .addOption(configOption()),
    )
      .addOption(num('--batch <n>', 'batch size (default 32)'))
      .addOption(num('--steps <n>', 'timed steps after one warm-up (default 3)'))
      .addOption(num('--workers <n>', 'gradient worker threads (default 0)'))
      .addHelpText('after', examples('decompose bench --model resnet20 --batch 64 --steps 5')),
    benchConfigSchema,
    runBench,
    deps,
  );

  program
    .command('smoke')
    .description('Initialise the default backend and time a convolution forward and backward pass.')
    .action((_options: unknown, self: Command) =>
      guarded(async () => {
        for (const line of formatSmoke(await runSmoke(), outputOptions(self).verbose)) io.print(line);
      }),
    );

  registerDemoCommand(program, deps);
  registerSensitivityCommand(program, deps);
  registerCompareCommand(program, deps);
  registerWebCommand(program, deps);
  registerExportCommand(program, deps);
  registerWorkerCommand(program, deps);

  return program;
}

/**
 * Runs the program on `argv` (user arguments only, without `node` and the script) and returns the exit code:
 * 0, 2 for bad input (a typed error or a usage error, printed as one `error:` message), 1 for a bug.
 */
export async function runCli(argv: readonly string[], io: ProgramIo = defaultIo): Promise<number> {
  let exitCode = 0;
  const program = createProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // Commander has printed its message (or the help) already.
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  return exitCode;
}
