import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import sirv from 'sirv';
import { WebError } from './errors.js';
import { CROSS_ORIGIN_ISOLATION_HEADERS } from './isolation.js';

/** Where {@link serveSite} listens. */
export interface ServeSiteOptions {
  /** TCP port; 0 picks a free one (default 4173, as `vite preview`). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1: this machine only). */
  host?: string;
}

/** A running static server of a prepared folder. */
export interface SiteServer {
  /** The page's address, e.g. `http://127.0.0.1:4173/`. */
  url: string;
  /** Stops listening and closes open connections. */
  close: () => Promise<void>;
}

/** Thrown by {@link serveSite} when it cannot listen (the port is taken, or not allowed). */
export class SiteServerError extends WebError {
  override readonly name = 'SiteServerError';
  constructor(
    readonly host: string,
    readonly port: number,
    /** The system's error code, e.g. `EADDRINUSE`. */
    readonly code: string,
  ) {
    super(
      `Cannot serve the page on ${host}:${port} (${code === 'EADDRINUSE' ? 'the port is in use' : code}); ` +
        'choose another port (0 picks a free one).',
    );
  }
}

/**
 * Serves `dir` (a folder filled by `copyPage` and `prepareSite`) over HTTP with the right content types
 * (`application/wasm` for the backend's `.wasm` files), cross-origin isolated (so the page runs tfjs's threaded
 * wasm build on every core), re-reading files on every request so that a folder prepared again is served fresh.
 *
 * @throws SiteServerError when it cannot listen on `host:port`.
 */
export async function serveSite(dir: string, options: ServeSiteOptions = {}): Promise<SiteServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 4173;
  const files = sirv(dir, {
    dev: true,
    setHeaders: (response) => {
      for (const [name, value] of Object.entries(CROSS_ORIGIN_ISOLATION_HEADERS))
        response.setHeader(name, value);
    },
  });
  const server = createServer((request, response) =>
    files(request, response, () => {
      response.statusCode = 404;
      response.end('Not found');
    }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new SiteServerError(host, port, error.code ?? error.message)),
    );
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}/`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
