import { type Executor, localExecutor, queueExecutor } from '@decompose/jobs';
import { PIPELINE_CATALOGUE } from '@decompose/pipeline';

/** A Redis queue that `decompose worker` processes take units from. */
export interface QueueAddress {
  url: string;
  name: string;
}

/** The queue a command's config names (`queue`, `queueName`), if any. */
export function queueAddress(config: { queue?: string; queueName: string }): QueueAddress | undefined {
  return config.queue === undefined ? undefined : { url: config.queue, name: config.queueName };
}

/**
 * The executor a command runs its units on: the BullMQ queue when given (workers started with
 * `decompose worker --queue` take them), else this thread (`threads` 0) or that many worker threads importing
 * the pipeline's catalogue.
 *
 * @throws RedisUnreachableError (of `@decompose/jobs`) naming the URL when Redis does not answer.
 */
export function openExecutor(queue: QueueAddress | undefined, threads = 0): Promise<Executor> {
  if (queue !== undefined) return queueExecutor({ url: queue.url, queue: queue.name });
  return localExecutor(threads > 0 ? { catalogue: PIPELINE_CATALOGUE, threads } : {});
}
