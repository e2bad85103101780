import type { Redis } from 'ioredis';
import { DEFAULT_RETENTION_SECONDS, retentionMs } from './blobs.js';
import { CheckpointTooLargeError } from './errors.js';

/**
 * A unit's place to keep its progress across attempts (`UnitContext.checkpoint`): a retried unit (its worker
 * killed, its first try thrown) reads what the attempt before it wrote, and resumes. One byte string per unit,
 * keyed by the unit's id; the back end clears it once the unit completes.
 */
export interface UnitCheckpoint {
  /** The bytes last written for this unit, by this attempt or an earlier one; null when there are none. */
  read(): Promise<Uint8Array | null>;
  /**
   * Replaces the checkpoint with `bytes`, whole or not at all; resolves once stored. Await every write before
   * the unit returns. Throws {@link CheckpointTooLargeError} above {@link UnitCheckpoint.maxBytes}.
   */
  write(bytes: Uint8Array): Promise<void>;
  /** The largest checkpoint it keeps, in bytes (the blob store's limit). */
  readonly maxBytes: number;
}

/** Where a back end keeps its units' checkpoints, by unit id. */
export interface CheckpointStore {
  read(unit: string): Promise<Uint8Array | null>;
  write(unit: string, bytes: Uint8Array): Promise<void>;
  clear(unit: string): Promise<void>;
  readonly maxBytes: number;
}

/** Where a queue's unit checkpoints live in Redis: one string per unit under this prefix, then the unit id. */
export function checkpointPrefix(queue: string): string {
  return `decompose-jobs:${queue}:checkpoint:`;
}

/** The checkpoint of one unit in a store. */
export function unitCheckpoint(store: CheckpointStore, unit: string): UnitCheckpoint {
  return {
    maxBytes: store.maxBytes,
    read: () => store.read(unit),
    write: (bytes) => store.write(unit, bytes),
  };
}

/** Throws {@link CheckpointTooLargeError} when `bytes` exceed `maxBytes`. */
export function checkCheckpointSize(bytes: Uint8Array, maxBytes: number): void {
  if (bytes.byteLength > maxBytes) throw new CheckpointTooLargeError(bytes.byteLength, maxBytes);
}

/** The local back ends' store: checkpoints in this process's memory (worker threads reach it through messages). */
export function memoryCheckpointStore(options: { maxBytes: number }): CheckpointStore {
  const { maxBytes } = options;
  const checkpoints = new Map<string, Uint8Array>();
  return {
    maxBytes,
    async read(unit) {
      const bytes = checkpoints.get(unit);
      return bytes === undefined ? null : Uint8Array.from(bytes);
    },
    async write(unit, bytes) {
      checkCheckpointSize(bytes, maxBytes);
      // A copy, so that the unit reusing its buffer does not change the checkpoint.
      checkpoints.set(unit, Uint8Array.from(bytes));
    },
    async clear(unit) {
      checkpoints.delete(unit);
    },
  };
}

/**
 * The queue back end's store: one Redis string per unit under `prefix + unit id`, on the queue's Redis, so that
 * the worker that retries a unit reads what the killed one wrote (SET replaces it atomically). Each write keeps
 * it `retentionSeconds` (default {@link DEFAULT_RETENTION_SECONDS}), as long as the job of a unit that failed
 * for good stays: a failed unit's checkpoint goes by itself with its job.
 */
export function redisCheckpointStore(
  redis: Redis,
  options: { prefix: string; maxBytes: number; retentionSeconds?: number },
): CheckpointStore {
  const { prefix, maxBytes } = options;
  const keep = retentionMs(options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS);
  return {
    maxBytes,
    async read(unit) {
      const bytes = await redis.getBuffer(`${prefix}${unit}`);
      return bytes === null ? null : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    async write(unit, bytes) {
      checkCheckpointSize(bytes, maxBytes);
      const value = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      await redis.set(`${prefix}${unit}`, value, 'PX', keep);
    },
    async clear(unit) {
      await redis.del(`${prefix}${unit}`);
    },
  };
}
