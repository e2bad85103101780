import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerEntry } from './threads.js';

describe('workerEntry', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'worker-entry-'));
    await writeFile(path.join(dir, 'built.js'), 'export {};\n');
    // A TypeScript-only worker: it needs the transpile hooks to load (the type annotation is not JavaScript).
    await writeFile(
      path.join(dir, 'typed.ts'),
      "import { parentPort } from 'node:worker_threads';\nconst answer: number = 6 * 7;\nparentPort?.postMessage(answer);\n",
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('starts a compiled script as it is', () => {
    const script = pathToFileURL(path.join(dir, 'built.js'));
    expect(workerEntry(script)).toEqual({ url: script, execArgv: undefined, argv: [] });
  });

  it('runs the TypeScript source beside a missing .js through the source entry', async () => {
    const entry = workerEntry(pathToFileURL(path.join(dir, 'typed.js')));
    expect(entry.url.pathname.endsWith('/source-entry.mjs')).toBe(true);
    expect(entry.argv).toEqual([pathToFileURL(path.join(dir, 'typed.ts')).href]);
    const worker = new Worker(entry.url, { execArgv: entry.execArgv, argv: entry.argv });
    const answer = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(answer).toBe(42);
  });

  it('names the missing script when neither exists', () => {
    const script = pathToFileURL(path.join(dir, 'absent.js'));
    expect(workerEntry(script).url).toEqual(script);
  });
});
