import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { BlobNotFoundError, BlobTooLargeError, JobsOptionError } from './errors.js';

/** Redis strings hold at most 512 MB (`proto-max-bulk-len`), so no blob may be larger. */
export const MAX_BLOB_BYTES = 512 * 1024 * 1024;

/** A blob id: the SHA-256 of the bytes, in hex. Use it in unit input and result schemas. */
export const blobIdSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a blob id is 64 lowercase hex digits (SHA-256)');

/** How long a blob put with {@link BlobStore.put} stays. */
export interface BlobPutOptions {
  /**
   * Keep the blob at least this many seconds from now, then let it go by itself: for inputs that several
   * coordinators may share (content addressing gives the same bytes one key, so one coordinator deleting them
   * would pull them from under another). Each put of the same bytes extends the time, never shortens it, and a
   * put without it keeps the blob until it is deleted. The in-memory store keeps every blob until it is deleted
   * or its executor closes.
   */
  expireSeconds?: number;
}

/**
 * A content-addressed store of byte strings (models, checkpoints): the same bytes always get the same id, so
 * putting them twice stores them once, and a retried unit that puts its output again changes nothing.
 */
export interface BlobStore {
  /**
   * Stores the bytes (or, when they are stored already, extends how long they stay) and returns their id
   * (SHA-256, hex); throws {@link BlobTooLargeError} above the limit.
   */
  put(bytes: Uint8Array, options?: BlobPutOptions): Promise<string>;
  /** The bytes of a blob; throws {@link BlobNotFoundError} when there is none with this id. */
  get(id: string): Promise<Uint8Array>;
  /** Whether the store holds a blob with this id. */
  has(id: string): Promise<boolean>;
  /** Removes a blob (no error when there is none). */
  delete(id: string): Promise<void>;
  /** The largest blob it takes, in bytes. */
  readonly maxBytes: number;
}

/** The SHA-256 of bytes, in hex: a blob's id. */
export function blobId(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkSize(bytes: Uint8Array, maxBytes: number): void {
  if (bytes.byteLength > maxBytes) throw new BlobTooLargeError(bytes.byteLength, maxBytes);
}

/** Milliseconds a put asks to keep its blob (0: until deleted); throws {@link JobsOptionError} when invalid. */
function keepMs(options: BlobPutOptions | undefined): number {
  const seconds = options?.expireSeconds;
  if (seconds === undefined) return 0;
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new JobsOptionError('expireSeconds', `must be a number of seconds > 0, not ${seconds}`);
  }
  return Math.ceil(seconds * 1000);
}

// Lua scripts, atomic in Redis. Both take the blob's key and the milliseconds to keep it (0: until deleted), and
// extend, never shorten: a blob kept until deleted stays so, an expiring one gets the later of the two expiries.
const READ_EXPIRY = `local ttl = redis.call('PTTL', KEYS[1])
local keep = tonumber(ARGV[1])
`;
const EXTEND = `
if keep == 0 then
  if ttl >= 0 then redis.call('PERSIST', KEYS[1]) end
elseif ttl >= 0 and ttl < keep then
  redis.call('PEXPIRE', KEYS[1], keep)
end
return 1`;
/** Extends an existing blob's expiry; returns 0 when there is no such blob. */
const KEEP = `${READ_EXPIRY}if ttl == -2 then return 0 end${EXTEND}`;
/** The same, setting the bytes (ARGV[2]) when the key is missing. */
const PUT = `${READ_EXPIRY}if ttl == -2 then
  if keep == 0 then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', keep) end
  return 1
end${EXTEND}`;

/** The local back end's store: blobs in this process's memory (worker threads reach it through messages). */
export function memoryBlobStore(options: { maxBytes?: number } = {}): BlobStore {
  const maxBytes = options.maxBytes ?? MAX_BLOB_BYTES;
  const blobs = new Map<string, Uint8Array>();
  return {
    maxBytes,
    async put(bytes, options) {
      checkSize(bytes, maxBytes);
      keepMs(options);
      const id = blobId(bytes);
      // A copy, so that the caller changing its buffer later does not change the blob.
      if (!blobs.has(id)) blobs.set(id, Uint8Array.from(bytes));
      return id;
    },
    async get(id) {
      const bytes = blobs.get(id);
      if (bytes === undefined) throw new BlobNotFoundError(id);
      return Uint8Array.from(bytes);
    },
    async has(id) {
      return blobs.has(id);
    },
    async delete(id) {
      blobs.delete(id);
    },
  };
}

/**
 * The queue back end's store: each blob is one Redis string under `prefix + id`, on the queue's Redis, so that
 * workers on other machines read what the coordinator put (they share no file system).
 */
export function redisBlobStore(redis: Redis, options: { prefix: string; maxBytes?: number }): BlobStore {
  const maxBytes = Math.min(options.maxBytes ?? MAX_BLOB_BYTES, MAX_BLOB_BYTES);
  const key = (id: string) => `${options.prefix}${id}`;
  return {
    maxBytes,
    async put(bytes, options) {
      checkSize(bytes, maxBytes);
      const keep = keepMs(options);
      const id = blobId(bytes);
      // Content addressing makes an existing key hold the same bytes already: only its expiry may change, and
      // the bytes (up to 512 MB) are sent only when the key is missing.
      if ((await redis.eval(KEEP, 1, key(id), keep)) === 0) {
        await redis.eval(
          PUT,
          1,
          key(id),
          keep,
          Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        );
      }
      return id;
    },
    async get(id) {
      const bytes = await redis.getBuffer(key(id));
      if (bytes === null) throw new BlobNotFoundError(id);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    async has(id) {
      return (await redis.exists(key(id))) === 1;
    },
    async delete(id) {
      await redis.del(key(id));
    },
  };
}
