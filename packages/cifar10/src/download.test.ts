import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { create } from 'tar';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CIFAR10_ARCHIVE_FOLDER,
  type DownloadProgress,
  downloadCifar10,
  resolveCifar10Dir,
} from './download.js';
import { Cifar10ChecksumError, Cifar10DownloadError, Cifar10MissingFileError } from './errors.js';
import { readCifar10 } from './reader.js';
import { tempDir, writeFixtureDir } from './test-fixtures.js';

type Mode = 'normal' | 'interrupt-once' | 'ignore-range' | 'not-found';

describe('downloadCifar10 against a local server', () => {
  let work: string;
  let archive: Buffer;
  let md5: string;
  let server: Server;
  let url: string;
  let mode: Mode = 'normal';
  let requests: (string | undefined)[] = [];
  let cacheDir: string;
  let cacheCount = 0;

  beforeAll(async () => {
    work = await tempDir();
    const source = join(work, 'source');
    await writeFixtureDir(join(source, CIFAR10_ARCHIVE_FOLDER), 4);
    const file = join(work, 'archive.tar.gz');
    await create({ gzip: true, file, cwd: source }, [CIFAR10_ARCHIVE_FOLDER]);
    archive = await readFile(file);
    md5 = createHash('md5').update(archive).digest('hex');

    server = createServer((request, response) => {
      requests.push(request.headers.range);
      if (mode === 'not-found') {
        response.writeHead(404).end();
        return;
      }
      const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
      if (range !== null && mode !== 'ignore-range') {
        const from = Number(range[1]);
        if (from >= archive.length) {
          response.writeHead(416, { 'Content-Range': `bytes */${archive.length}` }).end();
          return;
        }
        response.writeHead(206, {
          'Content-Length': archive.length - from,
          'Content-Range': `bytes ${from}-${archive.length - 1}/${archive.length}`,
        });
        response.end(archive.subarray(from));
        return;
      }
      response.writeHead(200, { 'Content-Length': archive.length });
      if (mode === 'interrupt-once') {
        mode = 'normal';
        // Send a third of the body, then drop the connection as a flaky network would.
        response.write(archive.subarray(0, Math.floor(archive.length / 3)), () => {
          setTimeout(() => response.socket?.destroy(), 50);
        });
        return;
      }
      response.end(archive);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cifar-10-binary.tar.gz`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(work, { recursive: true, force: true });
  });

  beforeEach(() => {
    mode = 'normal';
    requests = [];
    cacheCount += 1;
    cacheDir = join(work, `cache-${cacheCount}`);
  });

  const partOf = (dir: string) => join(dir, 'cifar-10-binary.tar.gz.part');

  it('downloads, verifies, extracts atomically, and then needs no network', async () => {
    const progress: DownloadProgress[] = [];
    const dir = await downloadCifar10({
      cacheDir,
      url,
      expectedMd5: md5,
      onProgress: (p) => progress.push(p),
    });
    expect(dir).toBe(join(cacheDir, CIFAR10_ARCHIVE_FOLDER));
    expect((await readCifar10(dir)).train.count).toBe(20);
    expect(requests).toEqual([undefined]);
    expect(progress.at(-1)?.phase).toBe('extract');
    expect(progress.find((p) => p.phase === 'download')?.totalBytes).toBe(archive.length);
    // Only the extracted folder remains: no archive, part or temporary folder.
    expect(await readdir(cacheDir)).toEqual([CIFAR10_ARCHIVE_FOLDER]);

    mode = 'not-found';
    await expect(downloadCifar10({ cacheDir, url, expectedMd5: md5 })).resolves.toBe(dir);
    expect(requests).toHaveLength(1);
  });

  it('keeps the part of an interrupted download and resumes it with a Range request', async () => {
    mode = 'interrupt-once';
    const error = await downloadCifar10({ cacheDir, url, expectedMd5: md5, retries: 0 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Cifar10DownloadError);
    expect((error as Error).message).toContain('run again');
    const kept = (await stat(partOf(cacheDir))).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(archive.length);

    const dir = await downloadCifar10({ cacheDir, url, expectedMd5: md5 });
    expect(requests).toEqual([undefined, `bytes=${kept}-`]);
    expect((await readCifar10(dir)).test.count).toBe(4);
  });

  it('resumes within one call when retries are allowed', async () => {
    mode = 'interrupt-once';
    const dir = await downloadCifar10({ cacheDir, url, expectedMd5: md5 });
    expect(requests).toHaveLength(2);
    expect(requests[1]).toMatch(/^bytes=\d+-$/);
    expect((await readCifar10(dir)).train.count).toBe(20);
  });

  it('starts over when the server ignores Range', async () => {
    mode = 'ignore-range';
    await mkdir(cacheDir, { recursive: true });
    await writeFile(partOf(cacheDir), archive.subarray(0, 1000));
    const dir = await downloadCifar10({ cacheDir, url, expectedMd5: md5 });
    // One request: its full 200 body replaced the part instead of being appended to it.
    expect(requests).toEqual(['bytes=1000-']);
    expect((await readCifar10(dir)).train.count).toBe(20);
  });

  it('starts over cleanly when the resumed file is bad', async () => {
    await mkdir(cacheDir, { recursive: true });
    await writeFile(partOf(cacheDir), Buffer.alloc(1000, 7));
    const dir = await downloadCifar10({ cacheDir, url, expectedMd5: md5 });
    expect(requests).toEqual(['bytes=1000-', undefined]);
    expect((await readCifar10(dir)).train.count).toBe(20);
  });

  it('starts over when the part is longer than the file (HTTP 416)', async () => {
    await mkdir(cacheDir, { recursive: true });
    await writeFile(partOf(cacheDir), Buffer.alloc(archive.length + 10, 1));
    const dir = await downloadCifar10({ cacheDir, url, expectedMd5: md5 });
    expect(requests).toEqual([`bytes=${archive.length + 10}-`, undefined]);
    expect((await readCifar10(dir)).train.count).toBe(20);
  });

  it('deletes a download with the wrong md5 and says so', async () => {
    const wrong = '0'.repeat(32);
    const error = await downloadCifar10({ cacheDir, url, expectedMd5: wrong }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Cifar10ChecksumError);
    expect((error as Error).message).toContain(`expected ${wrong}`);
    expect((error as Cifar10ChecksumError).actualMd5).toBe(md5);
    expect(existsSync(partOf(cacheDir))).toBe(false);
    expect(existsSync(join(cacheDir, CIFAR10_ARCHIVE_FOLDER))).toBe(false);
  });

  it('reports an HTTP error', async () => {
    mode = 'not-found';
    await expect(downloadCifar10({ cacheDir, url, expectedMd5: md5 })).rejects.toThrow(/HTTP 404/);
  });

  it('uses a caller folder as is, without the network', async () => {
    const dataDir = await writeFixtureDir(join(work, 'local'), 1);
    await expect(resolveCifar10Dir({ dataDir })).resolves.toBe(dataDir);
    await expect(resolveCifar10Dir({ dataDir: join(work, 'absent') })).rejects.toThrow(
      Cifar10MissingFileError,
    );
    expect(requests).toEqual([]);
    await expect(resolveCifar10Dir({ cacheDir, url, expectedMd5: md5 })).resolves.toBe(
      join(cacheDir, CIFAR10_ARCHIVE_FOLDER),
    );
  });
});
