import { appendFileSync } from 'node:fs';
import { Presets, SingleBar } from 'cli-progress';
import { asOutputError } from './files.js';

/** A long task's progress: a bar with ETA on a terminal, plain lines otherwise. */
export interface Progress {
  /** Advance to `done` of the total, with a short status (e.g. running loss/accuracy). */
  update(done: number, status?: string): void;
  stop(): void;
}

/** How much a {@link Console} shows, and where. */
export interface ConsoleOptions {
  /** Only warnings and results: no progress and no informational lines (the log file still gets them). */
  quiet?: boolean;
  /**
   * The caller prints the result as one JSON document on `print`: result lines are left out, and
   * informational lines and warnings go to `printInfo`.
   */
  json?: boolean;
  /** Where informational lines, warnings and progress lines go (default `print`). */
  printInfo?: (line: string) => void;
  /** Full reasons instead of short ones (e.g. why a backend was skipped). */
  verbose?: boolean;
}

/** Appends `text` to `file`, creating it. @throws OutputFileError when the file cannot be written. */
function appendToFile(file: string, text: string): void {
  try {
    appendFileSync(file, text);
  } catch (error) {
    throw asOutputError(error, file);
  }
}

/**
 * Output of the runner: progress bars, informational lines, warnings and the result, each also appended to a
 * log file when set.
 */
export class Console {
  private logFile: string | null = null;
  private readonly printInfo: (line: string) => void;
  /** Whether to give full reasons (`--verbose`). */
  readonly verbose: boolean;

  /**
   * @param tty - draw bars (default: stderr is a terminal and not CI)
   * @param print - where the result goes, and the other lines unless `options.printInfo` says otherwise
   *   (default stdout)
   */
  constructor(
    private readonly tty: boolean = Boolean(process.stderr.isTTY) && !process.env.CI,
    private readonly print: (line: string) => void = console.log,
    private readonly options: ConsoleOptions = {},
  ) {
    this.printInfo = options.printInfo ?? print;
    this.verbose = options.verbose ?? false;
  }

  /**
   * Also append every log line to this file (the run's log in the report folder). The file is opened at once, so
   * that an output folder that cannot be written fails the command before its work starts.
   *
   * @throws OutputFileError when the file cannot be written (no permission, read-only, full disk).
   */
  logTo(file: string | null): void {
    if (file !== null) appendToFile(file, '');
    this.logFile = file;
  }

  private append(line: string): void {
    if (this.logFile !== null) appendToFile(this.logFile, `${line}\n`);
  }

  /** An informational line (what is happening); not shown with `quiet`. */
  log(line: string): void {
    if (!this.options.quiet) this.printInfo(line);
    this.append(line);
  }

  /** A warning: shown even with `quiet`. */
  warn(line: string): void {
    this.printInfo(line);
    this.append(line);
  }

  /** A line of the command's result; left out in JSON mode, where the caller prints the result as JSON. */
  result(line: string): void {
    if (!this.options.json) this.print(line);
    this.append(line);
  }

  /**
   * A progress bar for `total` units of `label` (on stderr); plain lines (about every 10%) when not a terminal;
   * nothing with `quiet`.
   * `alreadySeconds` is time spent on the task before the bar was created (for an ETA from the first update).
   */
  progress(label: string, total: number, alreadySeconds = 0): Progress {
    if (this.options.quiet) return { update: () => {}, stop: () => {} };
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
