import { appendFileSync } from 'node:fs';
import { Presets, SingleBar } from 'cli-progress';
import { asOutputError } from './files.js';

/** A long task's progress: a bar with ETA on a terminal, plain lines otherwise. */
export interface Progress {
  /** Advance to `done` of the total, with a short status (e.g. running loss/accuracy). */
  update(done: number, status?: string): void;
  stop(): void;
}

/** Output of the runner: progress bars and log lines, also appended to a log file when set. */
export class Console {
  private logFile: string | null = null;

  /**
   * @param tty - draw bars (default: stderr is a terminal and not CI)
   * @param print - where log lines go (default stdout)
   */
  constructor(
    private readonly tty: boolean = Boolean(process.stderr.isTTY) && !process.env.CI,
    private readonly print: (line: string) => void = console.log,
  ) {}

  /**
   * Also append every log line to this file (the run's log in the report folder). The file is opened at once, so
   * that an output folder that cannot be written fails the command before its work starts.
   *
   * @throws OutputFileError when the file cannot be written (no permission, read-only, full disk).
   */
  logTo(file: string | null): void {
    if (file !== null) this.append(file, '');
    this.logFile = file;
  }

  log(line: string): void {
    this.print(line);
    if (this.logFile) this.append(this.logFile, `${line}\n`);
  }

  private append(file: string, text: string): void {
    try {
      appendFileSync(file, text);
    } catch (error) {
      throw asOutputError(error, file);
    }
  }

  /**
   * A progress bar for `total` units of `label`; plain lines (about every 10%) when not a terminal.
   * `alreadySeconds` is time spent on the task before the bar was created (for an ETA from the first update).
   */
  progress(label: string, total: number, alreadySeconds = 0): Progress {
    if (this.tty) {
      const bar = new SingleBar(
        {
          format: `${label} [{bar}] {value}/{total} | {percentage}% | ETA {eta_formatted} | {status}`,
          hideCursor: true,
        },
        Presets.shades_classic,
      );
      bar.start(total, 0, { status: '' });
      return {
        update: (done, status = '') => bar.update(done, { status }),
        stop: () => bar.stop(),
      };
    }
    const started = performance.now() - 1000 * alreadySeconds;
    let lastDecile = -1;
    return {
      update: (done, status = '') => {
        const decile = Math.floor((10 * done) / Math.max(total, 1));
        if (decile === lastDecile && done < total) return;
        lastDecile = decile;
        const elapsed = (performance.now() - started) / 1000;
        const eta = done > 0 ? (elapsed * (total - done)) / done : Number.NaN;
        this.log(
          `${label}: ${done}/${total} (${Math.round((100 * done) / Math.max(total, 1))}%) elapsed ${elapsed.toFixed(0)}s eta ${Number.isFinite(eta) ? `${eta.toFixed(0)}s` : '?'}${status ? ` | ${status}` : ''}`,
        );
      },
      stop: () => {},
    };
  }
}
