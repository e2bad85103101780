import { Command } from 'commander';
import type { CommandDeps } from './command.js';

/** What a command run in-process printed, and its exit code. */
export interface CommandRun {
  code: number;
  out: string[];
  err: string[];
}

/**
 * Runs one `decompose` command in this process (for tests), registered by `register` under `name`, capturing
 * what it prints and the exit code it sets.
 */
export async function runCommand(
  register: (program: Command, deps: CommandDeps) => unknown,
  name: string,
  argv: readonly string[],
): Promise<CommandRun> {
  const out: string[] = [];
  const err: string[] = [];
  let code = 0;
  const program = new Command('decompose').exitOverride();
  register(program, {
    io: { print: (l) => out.push(l), printError: (l) => err.push(l), tty: false },
    setExit: (c) => {
      code = c;
    },
  });
  await program.parseAsync([name, ...argv], { from: 'user' });
  return { code, out, err };
}
