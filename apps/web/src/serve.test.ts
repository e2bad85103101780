import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SiteServer, SiteServerError, serveSite } from './serve.js';

describe('serveSite', () => {
  let dir: string;
  let server: SiteServer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'decompose-web-serve-'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>page</title>');
    await writeFile(join(dir, 'backend.wasm'), new Uint8Array([0, 97, 115, 109]));
    server = await serveSite(dir, { port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the folder on 127.0.0.1, .wasm as application/wasm, cross-origin isolated', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>page</title>');
    const wasm = await fetch(new URL('backend.wasm', server.url));
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    for (const response of [page, wasm]) {
      expect(response.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(response.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    }
    expect((await fetch(new URL('missing.json', server.url))).status).toBe(404);
  });

  it('serves a file written after it started (a folder prepared again)', async () => {
    await writeFile(join(dir, 'later.json'), '{"late":true}');
    expect(await (await fetch(new URL('later.json', server.url))).json()).toEqual({ late: true });
  });

  it('reports a port that is in use', async () => {
    const port = Number(new URL(server.url).port);
    const error = await serveSite(dir, { port }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SiteServerError);
    expect((error as Error).message).toContain(`127.0.0.1:${port} (the port is in use)`);
  });
});
