import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { BlobNotFoundError, BlobTooLargeError, JobsOptionError } from './errors.js';

/** Redis strings hold at most 512 MB (`proto-max-bulk-len`), so no blob may be larger. */
export const MAX_BLOB_BYTES = 512 * 1024 * 1024;

/**
 * A blob id: the SHA-256 of the bytes, in hex. Use it in unit input and result schemas: a result's fields that
 * use it are the blobs the queue back end checks before it takes a completed job's result ({@link blobIdsIn}).
 */
export const blobIdSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a blob id is 64 lowercase hex digits (SHA-256)');

/**
 * The blob ids a value holds where its schema has {@link blobIdSchema} (as it is, or `.describe()`d), inside
 * objects, arrays, tuples, records, unions, lazy schemas, pipes and optional, nullable or default wrappers. A
 * unit kind's result schema thus says which blobs its result names: the queue back end checks that they are
 * still there before it takes a completed job's result, and runs the job again when one is gone.
 */
export function blobIdsIn(schema: z.ZodType, value: unknown): string[] {
  const ids = new Set<string>();
  const visit = (node: z.core.$ZodType, at: unknown): void => {
    const def = node._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
    if (def === blobIdSchema._zod.def) {
      if (typeof at === 'string' && blobIdSchema.safeParse(at).success) ids.add(at);
      return;
    }
    const child = (key: string) => def[key] as z.core.$ZodType;
    switch (def.type) {
      case 'object':
        if (typeof at === 'object' && at !== null) {
          for (const [key, field] of Object.entries(def.shape as Record<string, z.core.$ZodType>))
            visit(field, (at as Record<string, unknown>)[key]);
        }
        return;
      case 'array':
        if (Array.isArray(at)) for (const item of at) visit(child('element'), item);
        return;
      case 'tuple':
        if (Array.isArray(at)) {
          const items = def.items as z.core.$ZodType[];
          at.forEach((item, i) => {
            const itemSchema = items[i] ?? (def.rest as z.core.$ZodType | null);
            if (itemSchema) visit(itemSchema, item);
          });
        }
        return;
      case 'record':
        if (typeof at === 'object' && at !== null)
          for (const item of Object.values(at)) visit(child('valueType'), item);
        return;
      case 'union':
        for (const option of def.options as z.core.$ZodType[]) visit(option, at);
        return;
      case 'lazy':
        visit((def.getter as () => z.core.$ZodType)(), at);
        return;
      case 'pipe':
        visit(child('in'), at);
        visit(child('out'), at);
        return;
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'nonoptional':
      case 'readonly':
      case 'catch':
        visit(child('innerType'), at);
        return;
    }
  };
  visit(schema, value);
  return [...ids];
}

/**
 * How long a queue keeps what it holds in Redis by default: finished jobs, blobs and unit checkpoints (7 days;
 * `queueExecutor`'s `retentionSeconds`).
 */
export const DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600;

/** Milliseconds of a retention in seconds; throws {@link JobsOptionError} unless it is a number > 0. */
export function retentionMs(seconds: number): number {
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new JobsOptionError('retentionSeconds', `must be a number of seconds > 0, not ${seconds}`);
  }
  return Math.ceil(seconds * 1000);
}

/**
 * A content-addressed store of byte strings (models, checkpoints): the same bytes always get the same id, so
 * putting them twice stores them once, and a retried unit that puts its output again changes nothing.
 */
export interface BlobStore {
  /**
   * Stores the bytes (or, when they are stored already, only keeps them longer) and returns their id (SHA-256,
   * hex); throws {@link BlobTooLargeError} above the limit.
   */
  put(bytes: Uint8Array): Promise<string>;
  /** The bytes of a blob; throws {@link BlobNotFoundError} when there is none with this id. */
  get(id: string): Promise<Uint8Array>;
  /** Whether the store holds a blob with this id (on Redis, a blob asked about is kept longer, as by a get). */
  has(id: string): Promise<boolean>;
  /**
   * Removes a blob now (no error when there is none). On a queue's Redis, leave shared blobs to the retention
   * instead: another coordinator, or a completed job's result, may name the same bytes.
   */
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

// Lua scripts, atomic in Redis. Each takes the blob's key and the retention in ms, and keeps the blob at least
// that long from now: an expiry is extended, never shortened (another coordinator may keep blobs longer), and a
// blob without one (put by an older version, which kept blobs until deleted) gets one.
const KEEP_LONGER = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end`;
/** Keeps an existing blob longer; returns 0 when there is no such blob. */
const KEEP = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end${KEEP_LONGER}
return 1`;
/** Sets the bytes (ARGV[2]) when the key is missing, else keeps the blob longer. */
const PUT = `if redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1], 'NX') then return 1 end${KEEP_LONGER}
return 1`;
/** The bytes of a blob, kept longer; nil when there is none. */
const GET = `local bytes = redis.call('GET', KEYS[1])
if not bytes then return false end${KEEP_LONGER}
return bytes`;

/** The local back end's store: blobs in this process's memory (worker threads reach it through messages). */
export function memoryBlobStore(options: { maxBytes?: number } = {}): BlobStore {
  const maxBytes = options.maxBytes ?? MAX_BLOB_BYTES;
  const blobs = new Map<string, Uint8Array>();
  return {
    maxBytes,
    async put(bytes) {
      checkSize(bytes, maxBytes);
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

/** Options of {@link redisBlobStore}. */
export interface RedisBlobStoreOptions {
  /** The keys' prefix: each blob is the string `prefix + id`. */
  prefix: string;
  /** The largest blob it takes (default and cap: {@link MAX_BLOB_BYTES}). */
  maxBytes?: number;
  /**
   * Every put, get or `has` of a blob keeps it at least this long from then (seconds, default
   * {@link DEFAULT_RETENTION_SECONDS}); it goes by itself once nobody used it for that long.
   */
  retentionSeconds?: number;
}

/**
 * The queue back end's store: each blob is one Redis string under `prefix + id`, on the queue's Redis, so that
 * workers on other machines read what the coordinator put (they share no file system). Blobs are never kept for
 * good: each use keeps one `retentionSeconds` longer, so inputs that several coordinators share stay while any of
 * them uses them, and nobody needs to delete them.
 */
export function redisBlobStore(redis: Redis, options: RedisBlobStoreOptions): BlobStore {
  const maxBytes = Math.min(options.maxBytes ?? MAX_BLOB_BYTES, MAX_BLOB_BYTES);
  const keep = retentionMs(options.retentionSeconds ?? DEFAULT_RETENTION_SECONDS);
  const key = (id: string) => `${options.prefix}${id}`;
  return {
    maxBytes,
    async put(bytes) {
      checkSize(bytes, maxBytes);
      const id = blobId(bytes);
      // Content addressing makes an existing key hold the same bytes already: it is only kept longer, and the
      // bytes (up to 512 MB) are sent only when the key is missing.
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
      const bytes = (await redis.callBuffer('EVAL', GET, 1, key(id), keep)) as Buffer | null;
      if (bytes === null) throw new BlobNotFoundError(id);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    async has(id) {
      return (await redis.eval(KEEP, 1, key(id), keep)) === 1;
    },
    async delete(id) {
      await redis.del(key(id));
    },
  };
}
