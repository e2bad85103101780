import { EngineError } from '../errors.js';

/** A file-system failure the user can fix, by kind: what its errno code means for them. */
export type FileSystemProblem =
  | 'not-a-directory'
  | 'is-a-directory'
  | 'permission-denied'
  | 'read-only'
  | 'disk-full';

/** What a Node file-system error means for the user: its kind, its code, the cause in words and the fix. */
export interface FileSystemFailure {
  problem: FileSystemProblem;
  /** The errno code, e.g. `ENOSPC`. */
  code: string;
  /** The cause, e.g. `no space is left on the device`. */
  reason: string;
  /** One sentence saying what to do. */
  fix: string;
}

const PERMISSION_DENIED: Omit<FileSystemFailure, 'code'> = {
  problem: 'permission-denied',
  reason: 'permission denied',
  fix: 'Choose a folder you may write to (and read), or ask its owner to change its permissions (chown/chmod).',
};

const DISK_FULL_FIX = 'Free some space, or choose a folder on another disk, and run again.';

// The codes a user causes and can fix (a wrong path, permissions, a full disk); every other code is left as it is.
const FAILURES: ReadonlyMap<string, Omit<FileSystemFailure, 'code'>> = new Map([
  [
    'ENOTDIR',
    {
      problem: 'not-a-directory',
      reason: 'a file stands where a folder is expected',
      fix: 'Point at a folder, not at a file (or move the file out of the way).',
    },
  ],
  [
    'EISDIR',
    {
      problem: 'is-a-directory',
      reason: 'a folder stands where a file is expected',
      fix: 'Point at a file, not at a folder (or move the folder out of the way).',
    },
  ],
  ['EACCES', PERMISSION_DENIED],
  ['EPERM', PERMISSION_DENIED],
  [
    'EROFS',
    {
      problem: 'read-only',
      reason: 'the file system is read-only',
      fix: 'Choose a folder on a writable disk.',
    },
  ],
  ['ENOSPC', { problem: 'disk-full', reason: 'no space is left on the device', fix: DISK_FULL_FIX }],
  ['EDQUOT', { problem: 'disk-full', reason: 'the disk quota is used up', fix: DISK_FULL_FIX }],
]);

/**
 * The meaning of a Node file-system error for the user (a path that is a file, permissions, a read-only or full
 * disk), or null for any other error. The one table from errno codes to a problem and its fix, shared by every
 * package that writes files, so each can throw its own typed error with the same words.
 */
export function fileSystemFailure(error: unknown): FileSystemFailure | null {
  if (!(error instanceof Error)) return null;
  const { code } = error as NodeJS.ErrnoException;
  const failure = code === undefined ? undefined : FAILURES.get(code);
  return code === undefined || failure === undefined ? null : { ...failure, code };
}

/** `<what>: <reason> (<code>). <fix>`, the sentence every typed file-system error starts with. */
export function describeFileSystemFailure(what: string, failure: FileSystemFailure): string {
  return `${what}: ${failure.reason} (${failure.code}). ${failure.fix}`;
}

/** What went wrong reading or writing a model directory. */
export type ModelFileProblem =
  | 'missing-directory'
  | 'missing-model-json'
  | 'corrupt-model-json'
  | 'missing-weights'
  | 'weights-size-mismatch'
  | 'unsupported-artifacts'
  | FileSystemProblem;

/**
 * Thrown by the `file://` IO handler when a model cannot be saved or loaded; `file` names the file or
 * directory at fault and the message says how to fix it. For a file-system failure (`problem` one of
 * {@link FileSystemProblem}), `cause` is Node's error.
 */
export class ModelFileError extends EngineError {
  override readonly name = 'ModelFileError';
  constructor(
    readonly problem: ModelFileProblem,
    readonly file: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
