import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { JsonValue, UnitCheckpoint } from '@decompose/jobs';
import { z } from 'zod';
import { PackedFormatError } from '../errors.js';
import { frame, unframe } from '../packing.js';

/**
 * The optional `checkpointDir` of a training unit's input: set it only where the unit runs on the machine that
 * owns the folder (a local executor); queue workers leave it out.
 */
export const checkpointDirSchema = z
  .string()
  .min(1)
  .optional()
  .describe(
    'a folder of the machine running the unit for the training checkpoints; a re-run resumes from it',
  );

/** A training's checkpoint folder for one attempt of a unit: see {@link withCheckpointFolder}. */
export interface CheckpointFolder<Extra extends JsonValue> {
  /** The folder to give `train` as `checkpointDir`, with `resume: true`. */
  readonly dir: string;
  /** The epoch and extra data of the unit checkpoint this attempt restored; null when there was none. */
  readonly restored: { epoch: number; extra: Extra } | null;
  /**
   * Call from `onEpoch` (train has written the epoch's checkpoint by then): packs the folder, with `extra`
   * (what the unit needs to give the same result as an uninterrupted run), and writes it to the unit's
   * checkpoint in the background. Throws the error of an earlier write that failed.
   */
  saved(epoch: number, extra: Extra): void;
}

/**
 * Runs `body` with the folder a unit's training checkpoints into. `given` (a folder on the machine that runs
 * the unit, such as a local run's report folder) is used as it is: a re-run resumes there. Else a fresh
 * temporary folder, removed afterwards, travels through the unit's checkpoint (`UnitContext.checkpoint`: Redis
 * on a queue, since workers share no file system with the coordinator): an attempt restores what an earlier
 * one saved, and its training resumes where that one's last saved epoch ended.
 */
export async function withCheckpointFolder<T, Extra extends JsonValue>(
  prefix: string,
  given: string | undefined,
  checkpoint: UnitCheckpoint,
  extraSchema: z.ZodType<Extra>,
  body: (folder: CheckpointFolder<Extra>) => Promise<T>,
): Promise<T> {
  if (given !== undefined) return body({ dir: given, restored: null, saved: () => {} });
  const temporary = await mkdtemp(path.join(tmpdir(), `decompose-${prefix}-`));
  const dir = path.join(temporary, 'checkpoints');
  let writing: Promise<void> = Promise.resolve();
  let failure: Error | undefined;
  try {
    const bytes = await checkpoint.read();
    const restored = bytes === null ? null : await unpackCheckpointFolder(bytes, dir, extraSchema);
    const result = await body({
      dir,
      restored,
      saved(epoch, extra) {
        if (failure !== undefined) throw failure;
        // Read now, before train goes on: its next checkpoint replaces this one's files.
        const packed = packCheckpointFolder(dir, epoch, extra);
        writing = writing
          .then(() => checkpoint.write(packed))
          .catch((error: unknown) => {
            failure ??= error instanceof Error ? error : new Error(String(error));
          });
      },
    });
    await writing;
    if (failure !== undefined) throw failure;
    return result;
  } finally {
    // No write may land after the unit returns: the back end clears its checkpoint then.
    await writing;
    await rm(temporary, { recursive: true, force: true });
  }
}

const MAGIC = 'DCKP';

const headerSchema = z.object({
  epoch: z.number().int().positive(),
  files: z.array(
    z.object({
      path: z
        .string()
        .min(1)
        .refine(
          (file) => !path.isAbsolute(file) && !file.split(/[\\/]/).includes('..'),
          'a file of the folder must be a path inside it',
        ),
      bytes: z.number().int().nonnegative(),
    }),
  ),
  extra: z.unknown(),
});

/** Every file under `dir` (train's `metrics.jsonl` and newest `epoch-NNNN/`), with `epoch` and `extra`, in one frame. */
function packCheckpointFolder(dir: string, epoch: number, extra: JsonValue): Uint8Array {
  const files = (readdirSync(dir, { recursive: true }) as string[])
    .filter((file) => statSync(path.join(dir, file)).isFile())
    .sort();
  const contents = files.map((file) => readFileSync(path.join(dir, file)));
  const header = {
    epoch,
    files: files.map((file, i) => ({ path: file.split(path.sep).join('/'), bytes: contents[i]!.length })),
    extra,
  };
  return frame(MAGIC, header, contents);
}

/** Writes the files of a {@link packCheckpointFolder} frame into `dir`; throws {@link PackedFormatError}. */
async function unpackCheckpointFolder<Extra extends JsonValue>(
  bytes: Uint8Array,
  dir: string,
  extraSchema: z.ZodType<Extra>,
): Promise<{ epoch: number; extra: Extra }> {
  const { header, payload } = unframe(bytes, MAGIC, 'training checkpoint');
  const parsed = headerSchema.extend({ extra: extraSchema }).safeParse(header);
  if (!parsed.success) {
    throw new PackedFormatError('training checkpoint', `its header is wrong (${parsed.error.message})`);
  }
  const { epoch, files, extra } = parsed.data;
  const total = files.reduce((sum, file) => sum + file.bytes, 0);
  if (total !== payload.length) {
    throw new PackedFormatError(
      'training checkpoint',
      `its files need ${total} bytes, not ${payload.length}`,
    );
  }
  let offset = 0;
  for (const file of files) {
    const target = path.join(dir, file.path);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, payload.subarray(offset, offset + file.bytes));
    offset += file.bytes;
  }
  return { epoch, extra: extra as Extra };
}
