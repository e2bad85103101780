import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { BlobNotFoundError, BlobTooLargeError } from './errors.js';

/** Redis strings hold at most 512 MB (`proto-max-bulk-len`), so no blob may be larger. */
export const MAX_BLOB_BYTES = 512 * 1024 * 1024;

/** A blob id: the SHA-256 of the bytes, in hex. Use it in unit input and result schemas. */
export const blobIdSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'a blob id is 64 lowercase hex digits (SHA-256)');

/**
 * A content-addressed store of byte strings (models, checkpoints): the same bytes always get the same id, so
 * putting them twice stores them once, and a retried unit that puts its output again changes nothing.
 */
export interface BlobStore {
  /** Stores the bytes and returns their id (SHA-256, hex); throws {@link BlobTooLargeError} above the limit. */
  put(bytes: Uint8Array): Promise<string>;
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

/**
 * The queue back end's store: each blob is one Redis string under `prefix + id`, on the queue's Redis, so that
 * workers on other machines read what the coordinator put (they share no file system).
 */
export function redisBlobStore(redis: Redis, options: { prefix: string; maxBytes?: number }): BlobStore {
  const maxBytes = Math.min(options.maxBytes ?? MAX_BLOB_BYTES, MAX_BLOB_BYTES);
  const key = (id: string) => `${options.prefix}${id}`;
  return {
    maxBytes,
    async put(bytes) {
      checkSize(bytes, maxBytes);
      const id = blobId(bytes);
      // NX: content addressing makes an existing key hold the same bytes already.
      await redis.set(key(id), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'NX');
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
