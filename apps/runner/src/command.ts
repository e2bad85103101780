import { type Command, Option } from 'commander';
import type { z } from 'zod';
import { numberArg, resolveConfig } from './config.js';
import { reportError } from './errors.js';
import type { ProgramIo } from './program.js';
import { Console } from './progress.js';

/** What a `register<Name>Command` function needs from the program: where to print, how to set the exit code. */
export interface CommandDeps {
  io: ProgramIo;
  setExit: (code: number) => void;
}

/**
 * Sets `command`'s action: its config file (`--config`) and flags resolved with `schema`, then `run` with a
 * {@link Console}; a failure goes through `reportError`, which picks the exit code. When the configuration has
 * `json: true`, the value `run` returns is printed as one JSON document, the only thing on stdout.
 */
export function commandAction<Schema extends z.ZodType>(
  command: Command,
  schema: Schema,
  run: (config: z.output<Schema>, out: Console) => Promise<unknown>,
  deps: CommandDeps,
): Command {
  return command.action(async (options: Record<string, unknown>, self: Command) => {
    const { config: configFile, ...flags } = options;
    try {
      const config = await resolveConfig(schema, flags, configFile as string | undefined);
      const json = wantsJson(config);
      const result = await run(config, commandConsole(deps.io, self, json));
      if (json) deps.io.print(JSON.stringify(result, null, 2));
    } catch (error) {
      deps.setExit(reportError(error, deps.io.printError));
    }
  });
}

/** Whether a command's configuration asks for its result as JSON (`--json`, or `json: true` in the file). */
function wantsJson(config: unknown): boolean {
  return typeof config === 'object' && config !== null && 'json' in config && config.json === true;
}

/** The program's output options (`--quiet`, `--verbose`), wherever on the command line they were given. */
export function outputOptions(command: Command): { quiet: boolean; verbose: boolean } {
  const options = command.optsWithGlobals();
  return { quiet: options.quiet === true, verbose: options.verbose === true };
}

/**
 * The {@link Console} of a command run from `command`'s action, following the program's output options. With
 * `json`, stdout is left to the result's JSON document: every other line goes to stderr.
 */
export function commandConsole(io: ProgramIo, command: Command, json = false): Console {
  return new Console(io.tty, io.print, {
    ...outputOptions(command),
    json,
    printInfo: json ? io.printError : io.print,
  });
}

/** An option whose value is read as a number where it looks like one (validation then names the flag). */
export function numberOption(flags: string, description: string): Option {
  return new Option(flags, description).argParser(numberArg);
}

/**
 * The data flags of every command that reads images: `--data`, its image-folder settings (size, normalisation,
 * test split), the download, the limits (`--limit-train` only where training images are read: not for `web`).
 */
export function addDataOptions(command: Command, { trainingImages = true } = {}): Command {
  command
    .option(
      '--data <dir>',
      'CIFAR-10 folder in the binary layout, or an image folder <dir>/<class>/*.png|jpg (default: the bundled subset)',
    )
    .option('--input-size <HxW>', "image folder: resize to HxW, e.g. 64x64 (default: the model's input size)")
    .option(
      '--normalize <mean,std>',
      "per-channel mean,std (or 3 means then 3 stds) of pixels in [0, 1] (default: CIFAR-10's, ImageNet's for an image folder)",
    )
    .addOption(
      numberOption(
        '--test-fraction <f>',
        'image folder without train/ and test/: share of each class held out as the test set, in (0, 1) (default 0.2)',
      ),
    )
    .addOption(
      numberOption(
        '--split-seed <n>',
        'image folder without train/ and test/: seed of that split (default 0)',
      ),
    )
    .option('--download', 'download the full CIFAR-10 set into the cache folder (once) and use it')
    .option('--cache-dir <dir>', 'where --download keeps the data set (default ~/.cache/decompose)');
  if (trainingImages) {
    command.addOption(numberOption('--limit-train <n>', 'use only the first n training images (smoke runs)'));
  }
  return command.addOption(numberOption('--limit-test <n>', 'use only the first n test images (smoke runs)'));
}
