/**
 * The BullMQ queue the pipeline's units go through: `decompose compare|train --queue` enqueue there and
 * `decompose worker --queue` takes from there, so that both only need the Redis URL.
 */
export const PIPELINE_QUEUE = 'decompose';
