import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobId, memoryBlobStore, redisBlobStore } from './blobs.js';
import { JobsOptionError } from './errors.js';
import { type RedisServer, startRedisServer } from './testing.js';

let redis: RedisServer;
let client: Redis;

beforeAll(async () => {
  redis = await startRedisServer();
  client = new Redis(redis.url);
});

afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

const bytes = (text: string) => new TextEncoder().encode(text);

describe('redis blob store: expiry', () => {
  const prefix = 'test:blob:';
  const store = () => redisBlobStore(client, { prefix });
  /** The blob's remaining time in ms, as Redis reports it: -1 kept until deleted, -2 gone. */
  const ttl = (id: string) => client.pttl(`${prefix}${id}`);

  it('keeps a blob put with expireSeconds that long, and lets it go by itself', async () => {
    const id = await store().put(bytes('expires soon'), { expireSeconds: 0.2 });
    expect(await ttl(id)).toBeGreaterThan(0);
    expect(await store().has(id)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await ttl(id)).toBe(-2);
    expect(await store().has(id)).toBe(false);
  });

  it('extends an expiring blob on every put of the same bytes, and never shortens it', async () => {
    const a = store();
    const b = store(); // a second coordinator, on the same Redis
    const id = await a.put(bytes('shared input'), { expireSeconds: 100 });
    expect(await ttl(id)).toBeLessThanOrEqual(100_000);
    expect(await b.put(bytes('shared input'), { expireSeconds: 1_000 })).toBe(id);
    expect(await ttl(id)).toBeGreaterThan(100_000);
    await a.put(bytes('shared input'), { expireSeconds: 10 });
    expect(await ttl(id)).toBeGreaterThan(100_000);
    expect(Buffer.from(await b.get(id)).toString()).toBe('shared input');
  });

  it('keeps until deleted what any put asked to keep until deleted', async () => {
    const id = await store().put(bytes('kept'), { expireSeconds: 100 });
    await store().put(bytes('kept'));
    expect(await ttl(id)).toBe(-1);
    await store().put(bytes('kept'), { expireSeconds: 100 });
    expect(await ttl(id)).toBe(-1);
    const other = await store().put(bytes('kept from the start'));
    await store().put(bytes('kept from the start'), { expireSeconds: 100 });
    expect(await ttl(other)).toBe(-1);
    await store().delete(id);
    expect(await ttl(id)).toBe(-2);
  });

  it('sends the bytes only when the blob is missing', async () => {
    const payload = bytes('sent once');
    await store().put(payload, { expireSeconds: 100 });
    // Another value under the key: a put that sent its bytes would write them back.
    await client.set(`${prefix}${blobId(payload)}`, 'not sent again', 'KEEPTTL');
    await store().put(payload, { expireSeconds: 1_000 });
    expect(await client.get(`${prefix}${blobId(payload)}`)).toBe('not sent again');
  });

  it('refuses an expiry that is not a positive number of seconds, naming it', async () => {
    for (const expireSeconds of [0, -1, Number.NaN]) {
      await expect(store().put(bytes('x'), { expireSeconds })).rejects.toThrow(JobsOptionError);
      await expect(memoryBlobStore().put(bytes('x'), { expireSeconds })).rejects.toThrow(
        /Option 'expireSeconds' must be a number of seconds > 0/,
      );
    }
  });
});
