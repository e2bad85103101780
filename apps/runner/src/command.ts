import type { Command } from 'commander';
import type { z } from 'zod';
import { resolveConfig } from './config.js';
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
 * {@link Console}; a failure goes through `reportError`, which picks the exit code. (Same contract as the
 * built-in commands' action in `program.ts`.)
 */
export function commandAction<Schema extends z.ZodType>(
  command: Command,
  schema: Schema,
  run: (config: z.output<Schema>, out: Console) => Promise<unknown>,
  deps: CommandDeps,
): Command {
  return command.action(async (options: Record<string, unknown>) => {
    const { config: configFile, ...flags } = options;
    try {
      const config = await resolveConfig(schema, flags, configFile as string | undefined);
      await run(config, new Console(deps.io.tty, deps.io.print));
    } catch (error) {
      deps.setExit(reportError(error, deps.io.printError));
    }
  });
}
