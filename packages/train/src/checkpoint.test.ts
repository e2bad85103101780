import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileSystem, initEngine } from '@decompose/engine';
import { mountSmallDisk } from '@decompose/engine/testing';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpointWeights, readCheckpoint, readOptimizerState, writeCheckpoint } from './checkpoint.js';
import { modelSignature, type TrainConfig } from './config.js';
import { CheckpointMismatchError, CheckpointWriteError, InvalidCheckpointError } from './errors.js';
import { resolveScheduleSpec } from './schedule.js';
import { resolveSgdOptions, type SgdState } from './sgd.js';
import { temporaryDir, tinyModel } from './test-fixtures.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function checkpointDir(): Promise<string> {
  const { dir, remove } = await temporaryDir();
  cleanups.push(remove);
  return dir;
}

function configFor(model: tfl.LayersModel): TrainConfig {
  return {
    model: modelSignature(model),
    epochs: 2,
    batchSize: 16,
    dropLast: false,
    augment: true,
    seed: 3,
    trainCount: 48,
    labelSmoothing: 0,
    schedule: resolveScheduleSpec({ type: 'cosine', lr: 0.1 }),
    optimizer: resolveSgdOptions({ momentum: 0.9 }),
  };
}

function momentumFor(model: tfl.LayersModel, fill: number): SgdState {
  return {
    names: model.trainableWeights.map((w) => w.originalName),
    buffers: model.trainableWeights.map((w, i) =>
      new Float32Array(tf.util.sizeFromShape(w.shape as number[])).fill(fill + i),
    ),
  };
}

describe('checkpoints', () => {
  it('round-trips weights (BatchNorm statistics included), momentum, step and config', async () => {
    const dir = await checkpointDir();
    const saved = tinyModel(4, 1);
    // Non-default moving statistics, to see them restored.
    const bn = saved.getLayer('bn');
    bn.setWeights(bn.getWeights().map((w) => tf.fill(w.shape, 0.5)));
    const config = configFor(saved);
    const written = await writeCheckpoint(dir, {
      model: saved,
      optimizer: momentumFor(saved, 1),
      epoch: 1,
      globalStep: 3,
      config,
    });
    expect(path.basename(written)).toBe('epoch-0001');

    const info = await readCheckpoint(dir);
    expect(info).toMatchObject({
      path: written,
      epoch: 1,
      globalStep: 3,
      config,
      stream: { seed: 3, nextEpoch: 1 },
    });
    const restored = tinyModel(4, 99);
    await loadCheckpointWeights(restored, info!);
    const expected = saved.getWeights();
    for (const [i, weight] of restored.getWeights().entries()) {
      expect(weight.dataSync()).toEqual(expected[i]!.dataSync());
    }
    expect(await readOptimizerState(info!)).toEqual(momentumFor(saved, 1));
    // The weights are a standard tfjs model directory.
    const loaded = await tfl.loadLayersModel(fileSystem(written));
    expect(loaded.getWeights()[0]!.dataSync()).toEqual(expected[0]!.dataSync());
  });

  it('replaces the previous checkpoint only once the new one is complete', async () => {
    const dir = await checkpointDir();
    const model = tinyModel();
    const contents = { model, optimizer: momentumFor(model, 0), config: configFor(model) };
    await writeCheckpoint(dir, { ...contents, epoch: 1, globalStep: 3 });
    // A temporary directory left by a process killed mid-write is ignored, then cleaned up.
    await writeFile(path.join(dir, 'ignored.txt'), '');
    const abandoned = path.join(dir, '.epoch-0002.tmp-1-dead');
    await writeFile(abandoned, '');
    expect((await readCheckpoint(dir))?.epoch).toBe(1);
    await writeCheckpoint(dir, { ...contents, epoch: 2, globalStep: 6 });
    expect((await readdir(dir)).sort()).toEqual(['epoch-0002', 'ignored.txt']);
    expect((await readCheckpoint(dir))?.globalStep).toBe(6);
  });

  it('keeps the last good checkpoint, readable, when the disk fills up during the next one', async () => {
    const disk = await mountSmallDisk(64 * 1024);
    cleanups.push(disk.unmount);
    const dir = path.join(disk.dir, 'checkpoints');
    const tensors = tf.memory().numTensors;
    const model = tinyModel(4);
    await writeCheckpoint(dir, {
      model,
      optimizer: momentumFor(model, 0),
      epoch: 1,
      globalStep: 3,
      config: configFor(model),
    });
    // About 80 KB of weights and momentum: more than the disk has left.
    const big = tinyModel(256);
    const error: unknown = await writeCheckpoint(dir, {
      model: big,
      optimizer: momentumFor(big, 0),
      epoch: 2,
      globalStep: 6,
      config: configFor(big),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointWriteError);
    const kept = path.join(dir, 'epoch-0001');
    expect(error).toMatchObject({ problem: 'disk-full', path: dir, kept });
    expect((error as Error).message).toBe(
      `Cannot write a checkpoint to ${dir}: no space is left on the device (ENOSPC). Free some space, or choose ` +
        `a folder on another disk, and run again. The last good checkpoint, ${kept}, is intact: resume from it ` +
        'once this is fixed.',
    );
    expect(await readdir(dir)).toEqual(['epoch-0001']);
    const info = await readCheckpoint(dir);
    expect(info?.epoch).toBe(1);
    const restored = tinyModel(4, 99);
    await loadCheckpointWeights(restored, info!);
    expect(restored.getWeights()[0]!.dataSync()).toEqual(model.getWeights()[0]!.dataSync());
    expect((await readOptimizerState(info!)).buffers.length).toBe(model.trainableWeights.length);
    for (const m of [model, big, restored]) m.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('returns null for a directory without checkpoints', async () => {
    expect(await readCheckpoint(path.join(await checkpointDir(), 'missing'))).toBeNull();
  });

  it('rejects a malformed state.json with a typed error', async () => {
    const dir = await checkpointDir();
    const model = tinyModel();
    const written = await writeCheckpoint(dir, {
      model,
      optimizer: momentumFor(model, 0),
      epoch: 1,
      globalStep: 3,
      config: configFor(model),
    });
    await writeFile(
      path.join(written, 'state.json'),
      '{"format":"decompose-train-checkpoint/1","epoch":"one"}',
    );
    await expect(readCheckpoint(dir)).rejects.toThrow(InvalidCheckpointError);
    await expect(readCheckpoint(dir)).rejects.toThrow(/field 'epoch'/);
  });

  it('refuses to load weights into a model of another shape, naming the weights', async () => {
    const dir = await checkpointDir();
    const model = tinyModel(4);
    await writeCheckpoint(dir, {
      model,
      optimizer: momentumFor(model, 0),
      epoch: 1,
      globalStep: 3,
      config: configFor(model),
    });
    const other = tinyModel(8);
    const error = await loadCheckpointWeights(other, (await readCheckpoint(dir))!).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointMismatchError);
    expect((error as CheckpointMismatchError).differences).toContain(
      'weight conv/kernel: checkpoint shape [3, 3, 3, 4], model [3, 3, 3, 8]',
    );
  });
});
