import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyPage, PageNotBuiltError } from './page-files.js';

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'decompose-web-page-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('copyPage', () => {
  it("copies the page's HTML and assets, not the files Vite took from its public folder", async () => {
    const built = join(work, 'built');
    await mkdir(join(built, 'assets', 'nested'), { recursive: true });
    await mkdir(join(built, 'models'));
    await writeFile(join(built, 'index.html'), '<!doctype html>');
    await writeFile(join(built, 'assets', 'index-abc.js'), 'console.log(1)');
    await writeFile(join(built, 'assets', 'nested', 'backend.wasm'), new Uint8Array([0, 97, 115, 109]));
    await writeFile(join(built, 'models', 'stale.json'), '{}');
    const site = join(work, 'site');

    const copied = await copyPage(site, built);

    expect(copied.sort()).toEqual(['assets/index-abc.js', 'assets/nested/backend.wasm', 'index.html']);
    expect((await readdir(site)).sort()).toEqual(['assets', 'index.html']);
    expect(await readFile(join(site, 'assets', 'index-abc.js'), 'utf8')).toBe('console.log(1)');
    expect([...(await readFile(join(site, 'assets', 'nested', 'backend.wasm')))]).toEqual([0, 97, 115, 109]);
  });

  it('says how to build the page when it is not built', async () => {
    const error = await copyPage(join(work, 'site'), join(work, 'nothing')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PageNotBuiltError);
    expect((error as Error).message).toMatch(
      /index\.html is missing.*turbo run build --filter=@decompose\/web/,
    );
  });
});
