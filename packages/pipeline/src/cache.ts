import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createDirectory, describeFileSystemFailure, fileSystemFailure } from '@decompose/engine';
import { type ScanCache, type ScanEntry, sensitivityTableSchema } from '@decompose/sensitivity';
import { z } from 'zod';
import { ScanCacheError } from './errors.js';

const lineSchema = z.object({ key: z.string(), entry: sensitivityTableSchema.shape.entries.element });

/** A scan cache in a JSON-lines file, and how many entries it held when opened. */
export interface JsonlScanCache extends ScanCache {
  readonly loaded: number;
}

/** `error` as a {@link ScanCacheError} naming `target` when it is a file-system failure the user can fix. */
function asCacheError(error: unknown, target: string): unknown {
  const failure = fileSystemFailure(error);
  return failure === null
    ? error
    : new ScanCacheError(target, describeFileSystemFailure(`Cannot write ${target}`, failure), {
        cause: error,
      });
}

/**
 * A {@link ScanCache} backed by a JSON-lines file: each finished entry is appended as one line
 * `{ key, entry }`, so a killed scan loses at most what it was computing. Keys are prefixed with `scope`
 * (what the entries depend on besides the strategy, layer, ratio and steps: the model's weights, the
 * calibration split), so one file can serve several models without mix-ups. A torn last line is ignored.
 *
 * @throws ScanCacheError when the file or its folder cannot be written.
 */
export async function openScanCache(file: string, scope: string): Promise<JsonlScanCache> {
  const entries = new Map<string, ScanEntry>();
  const text = await readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      continue;
    }
    const parsed = lineSchema.safeParse(json);
    if (parsed.success) entries.set(parsed.data.key, parsed.data.entry);
  }
  const prefix = `${scope}|`;
  try {
    await createDirectory(path.dirname(file));
  } catch (error) {
    throw asCacheError(error, path.dirname(file));
  }
  const append = async (line: string) => {
    try {
      await appendFile(file, line);
    } catch (error) {
      throw asCacheError(error, file);
    }
  };
  // After a torn last line, start on a fresh line so the next entry is not glued to it.
  if (text !== '' && !text.endsWith('\n')) await append('\n');
  return {
    loaded: [...entries.keys()].filter((key) => key.startsWith(prefix)).length,
    get: (key) => entries.get(prefix + key),
    set: async (key, entry) => {
      entries.set(prefix + key, entry);
      await append(`${JSON.stringify({ key: prefix + key, entry })}\n`);
    },
  };
}
