import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createDirectory, fileSystemFailure, temporaryPath } from '@decompose/engine';
import { parse as parseYaml } from 'yaml';
import { OutputFileError, RunnerError } from './errors.js';

/** `error` as an {@link OutputFileError} naming `target` when it is a file-system failure the user can fix. */
export function asOutputError(error: unknown, target: string): unknown {
  const failure = fileSystemFailure(error);
  return failure === null ? error : new OutputFileError(target, failure, { cause: error });
}

/** Creates `dir` and its parents; a file-system failure becomes an {@link OutputFileError} naming `dir`. */
export async function ensureDirectory(dir: string): Promise<void> {
  try {
    await createDirectory(dir);
  } catch (error) {
    throw asOutputError(error, dir);
  }
}

/** A file written in full under a temporary name beside its target, not yet in place. */
export interface StagedFile {
  /** Renames it onto its target, replacing what was there. */
  commit(): Promise<void>;
  /** Deletes it, leaving the target as it was. */
  discard(): Promise<void>;
}

/**
 * Writes `data` (flushed to disk) to a temporary file beside `file`, creating the directory, so that several
 * outputs can be written first and put in place together. A failure removes the temporary file and throws
 * {@link OutputFileError} for a full disk, missing permissions and the like.
 */
export async function stageFile(file: string, data: string | Uint8Array): Promise<StagedFile> {
  await ensureDirectory(path.dirname(file));
  const temporary = temporaryPath(file);
  const discard = () => rm(temporary, { force: true });
  try {
    await writeFile(temporary, data, { flush: true });
  } catch (error) {
    await discard();
    throw asOutputError(error, file);
  }
  return {
    commit: async () => {
      try {
        await rename(temporary, file);
      } catch (error) {
        await discard();
        throw asOutputError(error, file);
      }
    },
    discard,
  };
}

/** Writes a file atomically (temp file + rename), creating its directory. */
export async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await (await stageFile(file, data)).commit();
}

/** JSON as the runner writes it: pretty-printed, with a final newline. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Writes JSON atomically, pretty-printed. */
export function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  return writeAtomic(file, jsonText(value));
}

/** Thrown when a config file is missing or is neither valid YAML nor JSON. */
export class ConfigFileError extends RunnerError {
  override readonly name = 'ConfigFileError';
}

/** Reads a YAML or JSON file (by extension; YAML is a superset of JSON, so anything else is read as YAML). */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigFileError(
      `Cannot read config file '${file}': ${(error as NodeJS.ErrnoException).code ?? String(error)}. Check the path.`,
    );
  }
  try {
    return file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigFileError(
      `Config file '${file}' is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
    );
  }
}
