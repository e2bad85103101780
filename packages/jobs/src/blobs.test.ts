import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { blobId, blobIdSchema, blobIdsIn, redisBlobStore } from './blobs.js';
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

describe('redis blob store: retention', () => {
  const prefix = 'test:blob:';
  const store = (retentionSeconds = 100) => redisBlobStore(client, { prefix, retentionSeconds });
  /** The blob's remaining time in ms, as Redis reports it: -1 kept until deleted, -2 gone. */
  const ttl = (id: string) => client.pttl(`${prefix}${id}`);

  it('keeps a blob its retention after the put, then lets it go by itself', async () => {
    const id = await store(0.2).put(bytes('expires soon'));
    expect(await ttl(id)).toBeGreaterThan(0);
    expect(await store(0.2).has(id)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await ttl(id)).toBe(-2);
    expect(await store(0.2).has(id)).toBe(false);
  });

  it('keeps a blob its retention after each put, get or has, from any store on the same Redis', async () => {
    const a = store(10);
    const b = store(10); // a second coordinator, or a worker
    const id = await a.put(bytes('shared input'));
    for (const use of [() => b.get(id), () => b.has(id), () => a.put(bytes('shared input'))]) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(await ttl(id)).toBeLessThan(9_600);
      await use();
      expect(await ttl(id)).toBeGreaterThan(9_600);
    }
    expect(Buffer.from(await b.get(id)).toString()).toBe('shared input');
  });

  it("never shortens a longer retention, and gives a blob kept for good (an older version's) one", async () => {
    const id = await store(1_000).put(bytes('kept long'));
    await store(10).get(id);
    await store(10).put(bytes('kept long'));
    expect(await ttl(id)).toBeGreaterThan(100_000);
    const legacy = blobId(bytes('kept for good'));
    await client.set(`${prefix}${legacy}`, 'kept for good');
    expect(await ttl(legacy)).toBe(-1);
    expect(Buffer.from(await store(10).get(legacy)).toString()).toBe('kept for good');
    expect(await ttl(legacy)).toBeGreaterThan(9_000);
  });

  it('sends the bytes only when the blob is missing', async () => {
    const payload = bytes('sent once');
    await store().put(payload);
    // Another value under the key: a put that sent its bytes would write them back.
    await client.set(`${prefix}${blobId(payload)}`, 'not sent again', 'KEEPTTL');
    await store(1_000).put(payload);
    expect(await client.get(`${prefix}${blobId(payload)}`)).toBe('not sent again');
  });

  it('refuses a retention that is not a positive number of seconds, naming it', () => {
    for (const retentionSeconds of [0, -1, Number.NaN]) {
      expect(() => store(retentionSeconds)).toThrow(
        /Option 'retentionSeconds' must be a number of seconds > 0/,
      );
    }
    expect(() => store(0)).toThrow(JobsOptionError);
  });
});

describe('blobIdsIn', () => {
  const id = (n: number) => String(n).repeat(64);

  it('finds the blob ids where a result schema has blobIdSchema, however it is nested', () => {
    const schema = z.object({
      model: blobIdSchema,
      described: blobIdSchema.describe('a model'),
      maybe: blobIdSchema.nullable(),
      absent: blobIdSchema.optional(),
      list: z.array(z.object({ blob: blobIdSchema })),
      byName: z.record(z.string(), blobIdSchema),
      pair: z.tuple([z.string(), blobIdSchema]),
      either: z.union([blobIdSchema, z.number()]),
      later: z.lazy(() => blobIdSchema),
      // Look-alikes that are not blob ids by the schema.
      name: z.string(),
      notBlobs: z.array(z.string()),
    });
    const value = schema.parse({
      model: id(1),
      described: id(2),
      maybe: null,
      list: [{ blob: id(3) }, { blob: id(1) }],
      byName: { a: id(4) },
      pair: [id(9), id(5)],
      either: 7,
      later: id(6),
      name: id(8),
      notBlobs: [id(8)],
    });
    expect(blobIdsIn(schema, value).sort()).toEqual([1, 2, 3, 4, 5, 6].map(id));
    expect(blobIdsIn(z.object({ n: z.number() }), { n: 1 })).toEqual([]);
  });
});
