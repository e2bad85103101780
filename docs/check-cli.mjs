#!/usr/bin/env node
// Checks that docs/cli.md documents the CLI as built: a `## ... \`<command>\`` section for every command the
// program lists, and every flag of every command (as `--flag` in backticks somewhere on the page).
//
// Usage: node docs/check-cli.mjs            (after `pnpm build`: runs apps/runner/dist/cli.js <command> --help)
//        node docs/check-cli.mjs --source   (no build: runs apps/runner/src/cli.ts through the engine's
//                                            transpile-on-load hooks, as the gradient workers do)
// Exit code 0 when nothing is missing, 1 otherwise. Plain Node, no dependencies.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const docsDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.dirname(docsDir);
const fromSource = process.argv.includes('--source');
const cli = fromSource
  ? path.join(repoRoot, 'apps', 'runner', 'src', 'cli.ts')
  : path.join(repoRoot, 'apps', 'runner', 'dist', 'cli.js');
const hooks = pathToFileURL(
  path.join(repoRoot, 'packages', 'engine', 'src', 'gradients', 'source-hooks.mjs'),
);
const nodeArgs = fromSource
  ? [
      '--conditions=@decompose/source',
      '--import',
      `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(hooks.href)})`,
    ]
  : [];
const page = readFileSync(path.join(docsDir, 'cli.md'), 'utf8');

/** Thrown when the built CLI cannot run (not built, or a dependency's dist/ missing). */
class CliUnavailableError extends Error {
  name = 'CliUnavailableError';
}

function help(...args) {
  try {
    return execFileSync(process.execPath, [...nodeArgs, cli, ...args, '--help'], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (error) {
    const cause = String(error.stderr ?? error.message)
      .split('\n')
      .find((line) => /Error/.test(line));
    throw new CliUnavailableError(
      `cannot run ${path.relative(process.cwd(), cli)} ${[...args, '--help'].join(' ')}: ${cause ?? 'it failed'}. Run \`pnpm build\` first, or use --source.`,
    );
  }
}

/** Command names from the program's help (the lines under `Commands:`), without commander's `help`. */
function commands() {
  const text = help();
  const list = text.slice(text.indexOf('Commands:'));
  return [...list.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]).filter((name) => name !== 'help');
}

const problems = [];
let names;
try {
  names = commands();
} catch (error) {
  if (!(error instanceof CliUnavailableError)) throw error;
  console.error(`docs/check-cli.mjs: ${error.message}`);
  process.exit(1);
}
for (const command of names) {
  if (!new RegExp(`^##[^\\n]*\`${command}\``, 'm').test(page)) {
    problems.push(`no section for command '${command}' (a heading naming \`${command}\`)`);
  }
  const flags = new Set(help(command).match(/--[a-z][a-z-]*/g) ?? []);
  flags.delete('--help');
  for (const flag of flags) {
    if (!page.includes(`\`${flag}`)) problems.push(`'${command} ${flag}' is not documented`);
  }
}
for (const problem of problems) console.error(`docs/cli.md: ${problem}`);
console.log(`docs cli: ${names.length} commands checked, ${problems.length} missing`);
process.exitCode = problems.length === 0 ? 0 : 1;
