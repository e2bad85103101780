import { Redis, type RedisOptions } from 'ioredis';
import { JobsOptionError, RedisUnreachableError } from './errors.js';

/** How long a first connection to Redis may take before {@link RedisUnreachableError} (ms). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 3_000;

/** Checks that a URL is `redis://HOST:PORT[/DB]` (or `rediss://` for TLS); throws {@link JobsOptionError}. */
export function checkRedisUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new JobsOptionError('url', `'${url}' is not a URL; give redis://HOST:PORT[/DB]`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new JobsOptionError(
      'url',
      `'${url}' is not a redis:// or rediss:// URL; give redis://HOST:PORT[/DB]`,
    );
  }
  if (parsed.pathname !== '' && parsed.pathname !== '/' && !/^\/\d+$/.test(parsed.pathname)) {
    throw new JobsOptionError(
      'url',
      `'${url}': the path must be a database number, as in redis://HOST:PORT/2`,
    );
  }
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.href;
  } catch {
    return url;
  }
}

/**
 * Connects once, without retries, and pings: the fail-fast check that runs before anything is written, so an
 * unreachable Redis is an error naming the URL within `connectTimeout` instead of a silent retry loop.
 */
export async function probeRedis(url: string, connectTimeout = DEFAULT_CONNECT_TIMEOUT_MS): Promise<void> {
  checkRedisUrl(url);
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // Errors arrive through connect()'s rejection; without a listener ioredis would also print them.
  probe.on('error', () => {});
  const timer = setTimeout(() => probe.disconnect(), connectTimeout + 500);
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    throw new RedisUnreachableError(
      redactUrl(url),
      `${(error as Error).message || 'connection closed'}; nothing was written`,
    );
  } finally {
    clearTimeout(timer);
    probe.disconnect();
  }
}

/**
 * A client for BullMQ and the blob store. `blocking` clients (workers, queue events) retry commands until
 * Redis is back, as BullMQ requires (`maxRetriesPerRequest: null`); the others fail a command after a retry.
 */
export function createRedis(
  url: string,
  options: { blocking: boolean; onError?: (error: Error) => void },
): Redis {
  const settings: RedisOptions = {
    connectTimeout: DEFAULT_CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: options.blocking ? null : 1,
    // Reconnect quickly at first, then every 2 s: a restarted Redis is picked up soon after it answers.
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  };
  const redis = new Redis(url, settings);
  redis.on('error', options.onError ?? (() => {}));
  return redis;
}
