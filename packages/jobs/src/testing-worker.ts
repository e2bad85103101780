// The queue worker process that startQueueWorkerProcess (testing.ts) starts: node testing-worker.js URL QUEUE
// CATALOGUE_URL LOCK_MS STALLED_MS. Prints 'ready' once it takes jobs, and exits when it closes (SIGTERM).
import { runQueueWorker } from './worker.js';

const [url, queue, catalogue, lockDurationMs, stalledIntervalMs] = process.argv.slice(2);
const worker = await runQueueWorker({
  url: url!,
  queue: queue!,
  catalogue: new URL(catalogue!),
  name: `worker-${process.pid}`,
  lockDurationMs: Number(lockDurationMs),
  stalledIntervalMs: Number(stalledIntervalMs),
  onError: (error) => process.stderr.write(`worker error: ${error.message}\n`),
});
process.stdout.write('ready\n');
await worker.closed;
process.exit(0);
