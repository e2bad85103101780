import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The CLI runs from its TypeScript sources in child processes through the engine's transpile-on-load hooks (as
// `docs/check-cli.mjs --source` runs it): coordinators and `decompose worker` processes meet only through a
// real redis-server, as on several machines.
const sourceCli = fileURLToPath(new URL('./cli.ts', import.meta.url));
const sourceHooks = new URL(import.meta.resolve('@decompose/engine/source-hooks'));
/** Node's arguments that run the CLI from its TypeScript sources (append the CLI's own arguments). */
export const sourceNodeArgs: readonly string[] = [
  '--conditions=@decompose/source',
  '--import',
  `data:text/javascript,import{register}from"node:module";register(${JSON.stringify(sourceHooks.href)})`,
  sourceCli,
];

/** A `decompose` child process started by {@link startCli}. */
export interface CliProcess {
  child: ChildProcess;
  /** What it printed so far. */
  output: { stdout: string; stderr: string };
  /** Its exit code (128 when a signal ended it). */
  exited: Promise<number>;
}

const started: CliProcess[] = [];

/** Starts `decompose <args>` (with `CI=true`: plain lines, no progress bars); `output` collects as it comes. */
export function startCli(args: readonly string[]): CliProcess {
  const child = spawn(process.execPath, [...sourceNodeArgs, ...args], {
    env: { ...process.env, CI: 'true' },
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => {
    output.stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output.stderr += chunk.toString();
  });
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  const cli = { child, output, exited };
  started.push(cli);
  return cli;
}

/** Resolves once `read()` matches `pattern`, polling; rejects after `ms` with what it read. */
export async function waitFor(read: () => string, pattern: RegExp, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!pattern.test(read())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${pattern}; got:\n${read()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A `decompose worker` process on queue `queue` at `url`, one job at a time, once it takes jobs. */
export async function startWorker(url: string, queue: string): Promise<CliProcess> {
  const worker = startCli(['worker', '--queue', url, '--queue-name', queue, '--concurrency', '1']);
  await waitFor(() => worker.output.stdout + worker.output.stderr, /taking units from queue/, 60_000);
  return worker;
}

/** Stops `processes` with SIGTERM (a worker finishes its running job first) and resolves with their exit codes. */
export function stopCli(processes: readonly CliProcess[]): Promise<number[]> {
  for (const p of processes)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  return Promise.all(processes.map((p) => p.exited));
}

/** Kills (SIGKILL) every process {@link startCli} started that is still running: for a test file's `afterAll`. */
export function killStartedCli(): void {
  for (const p of started)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
}
