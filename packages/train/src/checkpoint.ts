import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileSystem, fileSystemFailure, ModelFileError } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { configDifferences, modelSignature, type TrainConfig, trainConfigSchema } from './config.js';
import { CheckpointMismatchError, CheckpointWriteError, InvalidCheckpointError } from './errors.js';
import { isNodeError } from './files.js';
import type { SgdState } from './sgd.js';

/** Format tag written into every checkpoint's `state.json`. */
export const CHECKPOINT_FORMAT = 'decompose-train-checkpoint/1';
/** File of a checkpoint holding everything but the weights. */
const STATE_FILE = 'state.json';
/** File of a checkpoint holding the momentum buffers, float32, in `model.trainableWeights` order. */
const OPTIMIZER_FILE = 'optimizer.bin';
const EPOCH_DIR = /^epoch-(\d+)$/;
const TEMP_DIR = /^\.epoch-\d+\.tmp-/;

const stateSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  epoch: z.number().int().positive(),
  globalStep: z.number().int().nonnegative(),
  config: trainConfigSchema,
  stream: z.object({ seed: z.number().int().nonnegative(), nextEpoch: z.number().int().nonnegative() }),
  optimizer: z.object({ names: z.array(z.string()), sizes: z.array(z.number().int().nonnegative()) }),
  savedAt: z.string(),
});

/** What a checkpoint holds besides weights and momentum: where training stands and how it was set up. */
export interface CheckpointInfo {
  /** Directory of this checkpoint (`<checkpointDir>/epoch-NNNN`); a standard tfjs model directory. */
  path: string;
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  globalStep: number;
  /** The configuration that produced it. */
  config: TrainConfig;
  /** Batch-stream state: the seed and the next epoch to draw (batches depend only on both). */
  stream: { seed: number; nextEpoch: number };
  /** ISO time of writing. */
  savedAt: string;
}

type CheckpointState = z.output<typeof stateSchema>;

function epochDirName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`;
}

/** Epoch directories under `dir`, newest first; empty when `dir` does not exist. */
async function listCheckpoints(dir: string): Promise<{ epoch: number; name: string }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (isNodeError(error, 'ENOENT')) return [];
    throw error;
  }
  return names
    .flatMap((name) => {
      const match = EPOCH_DIR.exec(name);
      return match ? [{ epoch: Number(match[1]), name }] : [];
    })
    .sort((a, b) => b.epoch - a.epoch);
}

/**
 * Reads the newest checkpoint's description in `checkpointDir`, or null when there is none.
 * Throws {@link InvalidCheckpointError} when its `state.json` is missing or malformed.
 */
export async function readCheckpoint(checkpointDir: string): Promise<CheckpointInfo | null> {
  const [newest] = await listCheckpoints(checkpointDir);
  if (!newest) return null;
  const dir = path.join(checkpointDir, newest.name);
  const state = await readState(dir);
  if (state.epoch !== newest.epoch) {
    throw new InvalidCheckpointError(
      dir,
      `${STATE_FILE} says epoch ${state.epoch}, the directory name ${newest.epoch}`,
    );
  }
  const { epoch, globalStep, config, stream, savedAt } = state;
  return { path: dir, epoch, globalStep, config, stream, savedAt };
}

async function readState(dir: string): Promise<CheckpointState> {
  const file = path.join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isNodeError(error, 'ENOENT')) throw new InvalidCheckpointError(dir, `${STATE_FILE} is missing`);
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidCheckpointError(dir, `${STATE_FILE} is not JSON (${(error as Error).message})`);
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidCheckpointError(
      dir,
      `${STATE_FILE} field '${issue?.path.join('.') ?? ''}' is invalid (${issue?.message ?? 'unknown problem'})`,
    );
  }
  return parsed.data;
}

/** What {@link writeCheckpoint} stores. */
export interface CheckpointContents {
  model: LayersModel;
  optimizer: SgdState;
  epoch: number;
  globalStep: number;
  config: TrainConfig;
}

/**
 * Writes a checkpoint for `contents.epoch` under `checkpointDir` atomically: everything goes into a
 * temporary directory that is renamed to `epoch-NNNN` once complete; only then are older checkpoints
 * removed, so a process killed at any point, or a disk that fills up, leaves the previous good checkpoint
 * readable. Returns the checkpoint's directory.
 *
 * @throws CheckpointWriteError when the file system refuses the write (full disk, no permission, read-only).
 */
export async function writeCheckpoint(checkpointDir: string, contents: CheckpointContents): Promise<string> {
  const { model, optimizer, epoch, globalStep, config } = contents;
  const target = path.join(checkpointDir, epochDirName(epoch));
  const momentum = new Float32Array(optimizer.buffers.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const buffer of optimizer.buffers) {
    momentum.set(buffer, offset);
    offset += buffer.length;
  }
  const state: CheckpointState = {
    format: CHECKPOINT_FORMAT,
    epoch,
    globalStep,
    config,
    stream: { seed: config.seed, nextEpoch: epoch },
    optimizer: { names: optimizer.names, sizes: optimizer.buffers.map((b) => b.length) },
    savedAt: new Date().toISOString(),
  };
  await guardCheckpointWrite(checkpointDir, async () => {
    // A same-numbered directory can only be left over from an abandoned run that was not resumed.
    await rm(target, { recursive: true, force: true });
    // The engine stages the whole directory (the model, momentum and state) and renames it into place.
    await model.save(
      fileSystem(target, {
        extraFiles: {
          [OPTIMIZER_FILE]: new Uint8Array(momentum.buffer),
          [STATE_FILE]: `${JSON.stringify(state, null, 2)}\n`,
        },
      }),
    );
  });
  for (const name of await readdir(checkpointDir)) {
    const match = EPOCH_DIR.exec(name);
    if ((match && Number(match[1]) !== epoch) || TEMP_DIR.test(name)) {
      await rm(path.join(checkpointDir, name), { recursive: true, force: true });
    }
  }
  return target;
}

/**
 * Runs `write`, a write into `checkpointDir`, turning a file-system failure the user can fix (including the
 * engine's `ModelFileError` for one) into {@link CheckpointWriteError}, which names the checkpoint kept.
 */
export async function guardCheckpointWrite<T>(checkpointDir: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const failure = fileSystemFailure(error instanceof ModelFileError ? error.cause : error);
    if (failure === null) throw error;
    const [kept] = await listCheckpoints(checkpointDir).catch(() => []);
    throw new CheckpointWriteError(
      checkpointDir,
      failure,
      kept === undefined ? null : path.join(checkpointDir, kept.name),
      { cause: error },
    );
  }
}

/**
 * Loads a checkpoint's weights (BatchNorm statistics included) into `model` in place. Throws
 * {@link CheckpointMismatchError} naming each weight whose name or shape differs.
 */
export async function loadCheckpointWeights(model: LayersModel, checkpoint: CheckpointInfo): Promise<void> {
  const differences = configDifferences(checkpoint.config, {
    ...checkpoint.config,
    model: modelSignature(model),
  });
  if (differences.length > 0) throw new CheckpointMismatchError(checkpoint.path, differences);
  const handler = fileSystem(checkpoint.path);
  if (!handler.load) throw new InvalidCheckpointError(checkpoint.path, 'the file handler cannot load');
  const artifacts = await handler.load();
  if (!artifacts.weightData || !artifacts.weightSpecs) {
    throw new InvalidCheckpointError(checkpoint.path, 'model.json lists no weights');
  }
  const weights = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  try {
    model.loadWeights(weights, true);
  } finally {
    tf.dispose(Object.values(weights));
  }
}

/** Reads a checkpoint's momentum buffers. */
export async function readOptimizerState(checkpoint: CheckpointInfo): Promise<SgdState> {
  const { optimizer } = await readState(checkpoint.path);
  const file = path.join(checkpoint.path, OPTIMIZER_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if (isNodeError(error, 'ENOENT'))
      throw new InvalidCheckpointError(checkpoint.path, `${OPTIMIZER_FILE} is missing`);
    throw error;
  }
  const total = optimizer.sizes.reduce((n, s) => n + s, 0);
  if (bytes.byteLength !== total * 4) {
    throw new InvalidCheckpointError(
      checkpoint.path,
      `${OPTIMIZER_FILE} holds ${bytes.byteLength} bytes, ${STATE_FILE} describes ${total * 4}`,
    );
  }
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  let offset = 0;
  const buffers = optimizer.sizes.map((size) => {
    const buffer = all.slice(offset, offset + size);
    offset += size;
    return buffer;
  });
  return { names: optimizer.names, buffers };
}
