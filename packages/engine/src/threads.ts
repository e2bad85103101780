import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** How to start a worker thread (or child process) on a module of the workspace, built or from sources. */
export interface WorkerEntry {
  /** The script to start. */
  url: URL;
  /** Node options for it; undefined inherits the parent's (the built case). */
  execArgv: string[] | undefined;
  /** Arguments after the script: from sources, the module the source entry imports. */
  argv: string[];
}

/** Registers the transpile-on-load hooks, then imports the TypeScript module named by `process.argv[2]`. */
const SOURCE_ENTRY = new URL('./source-entry.mjs', import.meta.url);

/**
 * The entry to start a worker on `script`, the URL of its compiled `.js` beside the caller
 * (`new URL('./scan-worker.js', import.meta.url)`). Built, that is the script itself. When the caller runs
 * from its TypeScript sources (under vitest, where the `.js` does not exist but the `.ts` beside it does), it is
 * the engine's source entry, which registers hooks that transpile `.ts` on load and then imports the `.ts`,
 * with the workspace's `@decompose/source` export condition so that every workspace import resolves to
 * sources too. So workers run from a fresh clone without a build, and no package reaches into another's files.
 */
export function workerEntry(script: URL): WorkerEntry {
  const built = { url: script, execArgv: undefined, argv: [] };
  if (!script.pathname.endsWith('.js') || existsSync(fileURLToPath(script))) return built;
  const source = new URL(`${script.href.slice(0, -'.js'.length)}.ts`);
  // Neither exists: start the named script and let Node report it missing.
  if (!existsSync(fileURLToPath(source))) return built;
  return { url: SOURCE_ENTRY, execArgv: ['--conditions=@decompose/source'], argv: [source.href] };
}
