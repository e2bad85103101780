/**
 * The selection benchmark's work directory, which makes a killed run resumable: the configuration it belongs
 * to, the scan entries (JSON lines), the trained baseline and each finished arm's result.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ScanCache, ScanEntry } from '@decompose/sensitivity';
import { BenchError } from './errors.js';
import { writeAtomically } from './output.js';

/** Thrown when a work directory holds results of a different configuration. */
export class WorkDirMismatchError extends BenchError {
  override readonly name = 'WorkDirMismatchError';
  constructor(dir: string, differences: string[]) {
    super(
      `The work directory ${dir} belongs to another configuration (${differences.join('; ')}). ` +
        'Pass another --work-dir, or delete that directory to start over.',
    );
  }
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** One cached scan entry with the wall-clock seconds it took to compute. */
interface ScanLine {
  key: string;
  seconds: number;
  entry: ScanEntry;
}

/** The work directory of one configuration. */
export class WorkDir {
  private readonly scanLines = new Map<string, ScanLine>();

  private constructor(readonly dir: string) {}

  /**
   * Opens (creating it if needed) the work directory for `config`; throws {@link WorkDirMismatchError} when it
   * already holds another configuration's results.
   */
  static async open(dir: string, config: Record<string, unknown>): Promise<WorkDir> {
    const work = new WorkDir(dir);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'config.json');
    const existing = (await readJson(file)) as Record<string, unknown> | undefined;
    if (existing === undefined) {
      await writeAtomically(file, `${JSON.stringify(config, null, 2)}\n`);
    } else {
      const keys = new Set([...Object.keys(existing), ...Object.keys(config)]);
      const differences = [...keys]
        .filter((k) => JSON.stringify(existing[k]) !== JSON.stringify(config[k]))
        .map((k) => `${k}: ${JSON.stringify(existing[k])} → ${JSON.stringify(config[k])}`);
      if (differences.length > 0) throw new WorkDirMismatchError(dir, differences);
    }
    const text = await readFile(path.join(dir, 'scan.jsonl'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const parsed = JSON.parse(line) as ScanLine;
        work.scanLines.set(parsed.key, parsed);
      } catch {
        // A line cut short by a kill: that entry is recomputed.
      }
    }
    return work;
  }

  /** A path inside the work directory. */
  file(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /**
   * The scan cache. Each new entry is stored with the seconds since `clock.mark` (which the caller resets
   * before each entry's work begins), so a resumed run still knows what the whole scan cost.
   */
  scanCache(clock: { mark: number }): ScanCache {
    return {
      get: (key) => this.scanLines.get(key)?.entry,
      set: async (key, entry) => {
        const now = performance.now();
        const line: ScanLine = { key, seconds: (now - clock.mark) / 1000, entry };
        clock.mark = now;
        this.scanLines.set(key, line);
        await appendFile(this.file('scan.jsonl'), `${JSON.stringify(line)}\n`);
      },
    };
  }

  /** Seconds the cached scan entries took when they were computed. */
  scanSeconds(keys: readonly string[]): number {
    return keys.reduce((sum, key) => sum + (this.scanLines.get(key)?.seconds ?? 0), 0);
  }

  /** A stored JSON result (e.g. a finished arm), or undefined. */
  async read<T>(name: string): Promise<T | undefined> {
    return (await readJson(this.file(`${name}.json`))) as T | undefined;
  }

  /** Stores a JSON result atomically. */
  async write(name: string, value: unknown): Promise<void> {
    await writeAtomically(this.file(`${name}.json`), `${JSON.stringify(value, null, 2)}\n`);
  }
}
