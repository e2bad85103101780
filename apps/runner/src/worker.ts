import os from 'node:os';
import { type FinishedJob, runQueueWorker } from '@decompose/jobs';
import { PIPELINE_CATALOGUE, PIPELINE_QUEUE } from '@decompose/pipeline';
import type { Command } from 'commander';
import { z } from 'zod';
import { type CommandDeps, commandAction, numberOption } from './command.js';
import { LIMITS, queueNameSchema, queueUrlSchema, wholeNumber } from './config.js';
import type { Console } from './progress.js';

/** `decompose worker`. */
export const workerConfigSchema = z.strictObject({
  /** `redis://HOST:PORT[/DB]`, the coordinators' `--queue`. */
  queue: queueUrlSchema,
  queueName: queueNameSchema.default(PIPELINE_QUEUE),
  /** Jobs at once, each in its own process; default one per core. */
  concurrency: wholeNumber('concurrency', 1, LIMITS.workers).default(() => os.availableParallelism()),
});
export type WorkerConfig = z.output<typeof workerConfigSchema>;

/** One log line for a finished job: its kind, the layer (or name) it was about, its outcome and duration. */
export function describeJob(job: FinishedJob): string {
  const input = job.data.input;
  const about =
    typeof input === 'object' && input !== null && !Array.isArray(input)
      ? (['layer', 'name', 'arm'].map((k) => input[k]).find((v) => typeof v === 'string') as
          | string
          | undefined)
      : undefined;
  return (
    `${job.data.kind}${about === undefined ? '' : ` ${about}`}: ` +
    `${job.ok ? 'done' : `failed (${job.error ?? 'no reason'})`} in ${job.seconds.toFixed(1)}s`
  );
}

/**
 * `decompose worker`: runs the pipeline's units (scan layers, …) from a queue until SIGTERM or SIGINT, which
 * stop it taking jobs and let the running ones finish. Each job runs in its own child process.
 */
export async function runWorker(config: WorkerConfig, out: Console): Promise<void> {
  const worker = await runQueueWorker({
    url: config.queue,
    queue: config.queueName,
    catalogue: PIPELINE_CATALOGUE,
    concurrency: config.concurrency,
    onError: (error) => out.warn(`queue: ${error.message}`),
    onJob: (job) => out.log(describeJob(job)),
  });
  out.log(
    `worker ${worker.name} taking units from queue '${config.queueName}' at ${config.queue}, ` +
      `${config.concurrency} at a time (SIGTERM or Ctrl-C to stop after the running ones)`,
  );
  await worker.closed;
  out.log(`worker ${worker.name} stopped`);
}

/** Adds `decompose worker` to the program. */
export function registerWorkerCommand(program: Command, deps: CommandDeps): Command {
  const command = program
    .command('worker')
    .description(
      'Run units of work (scan layers, arms, training runs) from a Redis queue that `decompose sensitivity|compare|demo|train --queue` fills; one process per job.',
    )
    .option('--queue <url>', 'redis://HOST:PORT[/DB], the same as the coordinator gives')
    .option('--queue-name <name>', 'the queue to take units from (default decompose)')
    .addOption(
      numberOption('--concurrency <n>', 'jobs at once, each in its own process (default: one per core)'),
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ decompose worker --queue redis://10.0.0.5:6379',
        '  $ decompose worker --queue redis://10.0.0.5:6379/1 --queue-name scans --concurrency 2',
        '',
      ].join('\n'),
    );
  return commandAction(command, workerConfigSchema, runWorker, deps);
}
