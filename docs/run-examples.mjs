#!/usr/bin/env node
// Runs the examples of the docs: every ```ts, ```js and ```sh block of every README.md of the repository and of
// every page under docs/ runs, and the check fails with the block's file:line and the error when one throws,
// exits non-zero or runs out of time. Blocks opt out in their info string, with the reason:
//
//   ```sh norun: downloads the full CIFAR-10 and trains for hours
//
// Blocks tagged `file=<path>` are quotes of the repository's code (check-snippets.mjs checks them) and do not
// run. A block tagged `module=<name>.ts` also becomes the module ./<name>.js of every example on its page.
//
// TS and JS examples are transpiled with the repository's TypeScript (no type check) and run as ESM with Node,
// each in its own temporary folder (its working directory, so relative paths it writes stay out of the
// repository). They import as the README's package would: its own dependencies, and every workspace package by
// name, resolved to their built dist/ (so run `pnpm build` first); pages outside a package (the root README,
// docs/) import as apps/runner does, which depends on every package. Shell examples run with bash -euo pipefail
// from the repository root, where the docs say their commands run.
//
// Usage: node docs/run-examples.mjs [--list] [--verbose] [--jobs N] [--timeout S] [page.md ...]
// Without pages it runs the examples of every page, 2 at a time (--jobs), each for at most 120 s (--timeout).
// --list prints each example and whether it runs, without running any; --verbose prints what each one that
// passed printed. Exit code 0 when every example ran green, 1 otherwise. Plain Node; `typescript` comes from
// the repository's root devDependencies.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { docPages, fencedBlocks, repoRoot } from './markdown.mjs';

const fence = '```';
const LANGUAGES = {
  ts: 'ts',
  typescript: 'ts',
  js: 'js',
  javascript: 'js',
  mjs: 'js',
  sh: 'sh',
  bash: 'sh',
  shell: 'sh',
};

/**
 * The examples of a Markdown text: every ts/js/sh fenced block that is not a quote (`file=`), as
 * `{ line, lang, code, module, norun }` (`module`: the file name of a `module=` block, `norun`: the reason of an
 * opted-out block, else null), and `problems` (`{ line, message }`) for tags it cannot read.
 */
export function examples(markdown) {
  const found = [];
  const problems = [];
  for (const { line, lang, attributes, code } of fencedBlocks(markdown)) {
    const kind = LANGUAGES[lang];
    if (kind === undefined || /(?:^|\s)file=/.test(attributes)) continue;
    const norun = /^norun(?::\s*(.*))?$/.exec(attributes);
    if (norun) {
      if (!norun[1])
        problems.push({
          line,
          message: `norun needs a reason: ${fence}${lang} norun: <why it does not run>`,
        });
      else found.push({ line, lang: kind, code, module: null, norun: norun[1] });
      continue;
    }
    const module = /^module=(\S+)$/.exec(attributes)?.[1] ?? null;
    if (attributes !== '' && module === null) {
      problems.push({
        line,
        message: `unknown tag '${attributes}': an example takes 'norun: <reason>', 'module=<name>.ts' or 'file=<path>'`,
      });
    } else if (module !== null && (kind === 'sh' || !/^[\w-]+\.(?:ts|js)$/.test(module))) {
      problems.push({
        line,
        message: `module=${module}: a module is a ts or js block named <name>.ts or <name>.js`,
      });
    } else {
      found.push({ line, lang: kind, code, module, norun: null });
    }
  }
  return { examples: found, problems };
}

/** The workspace packages, name → folder, from pnpm-workspace.yaml (`dir` and `dir/*` entries). */
function workspacePackages() {
  const yaml = readFileSync(path.join(repoRoot, 'pnpm-workspace.yaml'), 'utf8');
  const section = yaml.slice(yaml.indexOf('packages:')).split(/\n(?=\S)/)[0];
  const patterns = [...section.matchAll(/^\s+-\s+['"]?([^'"\s]+)['"]?\s*$/gm)].map((m) => m[1]);
  const folders = patterns.flatMap((pattern) =>
    pattern.endsWith('/*')
      ? readdirSync(path.join(repoRoot, pattern.slice(0, -2))).map((name) =>
          path.join(pattern.slice(0, -2), name),
        )
      : [pattern],
  );
  return new Map(
    folders
      .map((folder) => path.join(repoRoot, folder))
      .filter((dir) => existsSync(path.join(dir, 'package.json')))
      .map((dir) => [JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name, dir]),
  );
}

/** The package a page belongs to: the nearest folder above it with a package.json, apps/runner for the root's. */
function packageOf(page) {
  for (let dir = path.dirname(page); dir !== repoRoot && dir.startsWith(repoRoot); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
  }
  return path.join(repoRoot, 'apps', 'runner');
}

/**
 * A node_modules folder in `dir` that sees what an example of `packageDir`'s README imports: that package's own
 * dependencies, and every workspace package by name.
 */
function linkModules(dir, packageDir, workspace) {
  const links = new Map();
  const installed = path.join(packageDir, 'node_modules');
  for (const name of existsSync(installed) ? readdirSync(installed) : []) {
    if (name.startsWith('.')) continue;
    const full = path.join(installed, name);
    const scoped = name.startsWith('@') ? readdirSync(full).map((inner) => `${name}/${inner}`) : [name];
    for (const entry of scoped) links.set(entry, path.join(installed, entry));
  }
  for (const [name, folder] of workspace) links.set(name, folder);
  for (const [name, target] of links) {
    const link = path.join(dir, 'node_modules', name);
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(target, link, 'dir');
  }
}

let typescript;
/** `code` as ESM JavaScript, with an inline source map pointing at `page` (line numbers are the page's). */
async function transpile(code, line, page) {
  typescript ??= (
    await import(
      pathToFileURL(path.join(repoRoot, 'node_modules', 'typescript', 'lib', 'typescript.js')).href
    )
  ).default;
  const ts = typescript;
  const { outputText, diagnostics } = ts.transpileModule('\n'.repeat(line) + code, {
    fileName: path.basename(page),
    reportDiagnostics: true,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      inlineSourceMap: true,
      sourceRoot: `${pathToFileURL(path.dirname(page)).href}/`,
    },
  });
  const errors = diagnostics.map((d) => {
    const at =
      d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : line;
    return `line ${at}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  });
  return { javascript: outputText, errors };
}

// Examples run in process groups of their own (a shell example's commands start processes of their own), so a
// timeout, or this script being stopped (see main), ends all of them.
const running = new Set();

/** Runs `command` with `args` in `cwd`; resolves to `{ code, output, timedOut, seconds }`. */
function run(command, args, cwd, timeoutSeconds) {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(child.pid);
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid, 'SIGKILL');
    }, timeoutSeconds * 1000);
    child.on('close', (code, signal) => {
      running.delete(child.pid);
      clearTimeout(timer);
      resolve({ code: code ?? signal, output, timedOut, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** Runs one example; resolves to `{ seconds, output, failure }`, `failure` null when it passed. */
async function runExample(example, page, folder, modules, timeout) {
  if (example.lang === 'sh') {
    // The trap names the failing command; it sits on line 1, so the example's lines keep the page's numbers.
    const trap = `trap 'echo "line $LINENO: $BASH_COMMAND exited with $?" >&2' ERR`;
    const script = trap + '\n'.repeat(example.line) + example.code;
    const result = await run('bash', ['-euo', 'pipefail', '-c', script], repoRoot, timeout);
    return { ...result, failure: failureOf(result, timeout) };
  }
  const { javascript, errors } = await transpile(example.code, example.line, page);
  if (errors.length > 0)
    return { seconds: 0, output: '', failure: `does not compile:\n${errors.join('\n')}` };
  mkdirSync(folder, { recursive: true });
  for (const [name, source] of modules) writeFileSync(path.join(folder, name), source);
  writeFileSync(path.join(folder, 'example.mjs'), javascript);
  const result = await run(process.execPath, ['--enable-source-maps', 'example.mjs'], folder, timeout);
  return { ...result, failure: failureOf(result, timeout) };
}

/** The last lines of `output`, each cut to 300 characters (minified code in a stack), paths from the repository. */
function tail(output) {
  return output
    .trimEnd()
    .split('\n')
    .slice(-25)
    .map((line) => (line.length > 300 ? `${line.slice(0, 300)} …` : line))
    .join('\n')
    .replaceAll(`${pathToFileURL(repoRoot).href}/`, '')
    .replaceAll(`${repoRoot}/`, '');
}

function failureOf({ code, output, timedOut }, timeout) {
  if (timedOut) return `timed out after ${timeout} s (opt out with 'norun: <reason>' if it is a long job)`;
  if (code === 0) return null;
  return `exited with ${code}:\n${tail(output)}`;
}

/** Runs `tasks` (functions returning promises) with at most `jobs` at a time. */
async function pool(tasks, jobs) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(jobs, tasks.length) }, worker));
}

function option(args, name, fallback) {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!(value > 0)) throw new Error(`${name} needs a number > 0, got '${args[at + 1]}'`);
  args.splice(at, 2);
  return value;
}

async function main(argv) {
  const args = [...argv];
  const jobs = option(args, '--jobs', 2);
  const timeout = option(args, '--timeout', 120);
  const list = args.includes('--list');
  const verbose = args.includes('--verbose');
  const pageArgs = args.filter((a) => a !== '--list' && a !== '--verbose');
  const unknown = pageArgs.find((a) => a.startsWith('--'));
  if (unknown) throw new Error(`unknown option ${unknown} (use --list, --verbose, --jobs N, --timeout S)`);
  const pages = pageArgs.length > 0 ? pageArgs.map((a) => path.resolve(a)) : docPages();

  const temp = mkdtempSync(path.join(os.tmpdir(), 'decompose-examples-'));
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      for (const pid of running) process.kill(-pid, 'SIGKILL');
      rmSync(temp, { recursive: true, force: true });
      process.exit(1);
    });
  }
  const started = performance.now();
  const failures = [];
  // TS/JS examples run `jobs` at a time; shell examples after them, one at a time, since they run in the
  // repository (a build there rewrites the dist/ files the other examples import).
  const tasks = { node: [], shell: [] };
  let optedOut = 0;
  let green = 0;
  const workspace = workspacePackages();
  for (const [index, page] of pages.entries()) {
    const shown = path.relative(repoRoot, page);
    const { examples: found, problems } = examples(readFileSync(page, 'utf8'));
    for (const { line, message } of problems) failures.push(`${shown}:${line}: ${message}`);
    const pageDir = path.join(temp, String(index));
    const modules = [];
    for (const example of found.filter((e) => e.module !== null)) {
      const name = example.module.replace(/\.ts$/, '.js');
      const source =
        example.lang === 'ts'
          ? await transpile(example.code, example.line, page)
          : { javascript: example.code, errors: [] };
      if (source.errors.length > 0) continue; // reported when the block itself runs
      modules.push([name, source.javascript]);
    }
    if (!list && found.some((e) => e.lang !== 'sh' && e.norun === null)) {
      mkdirSync(pageDir, { recursive: true });
      writeFileSync(path.join(pageDir, 'package.json'), '{ "type": "module" }\n');
      linkModules(pageDir, packageOf(page), workspace);
    }
    for (const example of found) {
      const where = `${shown}:${example.line}`;
      if (example.norun !== null) {
        optedOut++;
        console.log(`norun    ${where} (${example.lang}): ${example.norun}`);
        continue;
      }
      if (list) {
        console.log(
          `run      ${where} (${example.lang}${example.module ? `, module ${example.module}` : ''})`,
        );
      }
      tasks[example.lang === 'sh' ? 'shell' : 'node'].push(async () => {
        const result = await runExample(
          example,
          page,
          path.join(pageDir, `line-${example.line}`),
          modules,
          timeout,
        );
        const status = result.failure === null ? 'ok' : 'FAIL';
        console.log(`${status.padEnd(8)} ${where} (${example.lang}, ${result.seconds.toFixed(1)} s)`);
        if (verbose && result.failure === null && result.output.trim() !== '')
          console.log(tail(result.output).replace(/^/gm, '         | '));
        if (result.failure === null) green++;
        else failures.push(`${where}: ${example.lang} example ${result.failure}`);
      });
    }
  }
  if (!list) {
    await pool(tasks.node, jobs);
    await pool(tasks.shell, 1);
  }
  const count = tasks.node.length + tasks.shell.length;
  rmSync(temp, { recursive: true, force: true });
  for (const failure of failures) console.error(`\n${failure}`);
  const ran = list ? `${count} to run` : `${count} ran, ${green} green`;
  console.log(
    `docs examples: ${ran}, ${optedOut} opted out (${pages.length} pages, ${((performance.now() - started) / 1000).toFixed(0)} s)`,
  );
  return failures.length === 0 ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
