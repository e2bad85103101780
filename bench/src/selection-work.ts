/**
 * The selection benchmark's work directory, which makes a killed run resumable: the configuration it belongs
 * to, the scan cache (`scan.jsonl`, the pipeline's JSON lines) and the time the scan took, the trained
 * baseline and each finished (arm, seed) run.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { BenchError } from './errors.js';
import { writeAtomically } from './output.js';

/** Where the scan's seconds over resumed runs are kept (see {@link WorkDir.scanTime}). */
const SCAN_TIME = 'scan-time';

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

/** The work directory of one configuration. */
export class WorkDir {
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
    return work;
  }

  /** A path inside the work directory. */
  file(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  /**
   * The scan's wall-clock seconds over the runs of this configuration that computed entries: `earlier` (the
   * runs before this one) and `record(seconds)`, which stores `earlier + seconds` as this run's part so far.
   * Called as entries finish, a run killed mid-scan keeps what it spent up to its last entry.
   */
  async scanTime(): Promise<{ earlier: number; record: (seconds: number) => Promise<void> }> {
    const earlier = (await this.read<{ seconds: number }>(SCAN_TIME))?.seconds ?? 0;
    let writing = Promise.resolve();
    return {
      earlier,
      record: (seconds) => {
        // One write at a time: they share the temporary file of the atomic write.
        writing = writing.then(() => this.write(SCAN_TIME, { seconds: earlier + seconds }));
        return writing;
      },
    };
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
