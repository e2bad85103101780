import { mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../backends.js';
import { mountSmallDisk } from '../testing.js';
import {
  FILE_SCHEME,
  fileSystem,
  fileSystemFailure,
  MODEL_JSON_FILE,
  ModelFileError,
  registerFileRouter,
  WEIGHTS_FILE,
} from './index.js';

let root: string;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  root = await mkdtemp(path.join(tmpdir(), 'decompose-io-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function smallModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [4, 4, 2] });
  const conv = tfl.layers
    .conv2d({ name: 'block.conv', filters: 3, kernelSize: 3, padding: 'same', useBias: false })
    .apply(input) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization({ name: 'block.bn' }).apply(conv) as tfl.SymbolicTensor;
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'head.pool' }).apply(bn) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ name: 'head.fc', units: 2 }).apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

async function savedModelDir(name: string): Promise<string> {
  const dir = path.join(root, name);
  const model = smallModel();
  await model.save(`${FILE_SCHEME}${dir}`);
  model.dispose();
  return dir;
}

async function loadError(target: string): Promise<ModelFileError> {
  const error: unknown = await fileSystem(target)
    .load?.()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  if (!(error instanceof ModelFileError)) throw new Error(`expected a ModelFileError, got ${String(error)}`);
  return error;
}

describe('file:// model IO', () => {
  it('round-trips a layers model through model.save and tf.loadLayersModel', async () => {
    const dir = path.join(root, 'nested', 'round-trip');
    const model = smallModel();
    const x = tf.randomNormal([2, 4, 4, 2], 0, 1, 'float32', 7);
    const result = await model.save(`${FILE_SCHEME}${dir}`);
    expect(result.modelArtifactsInfo.weightDataBytes).toBeGreaterThan(0);
    expect((await readdir(dir)).sort()).toEqual([MODEL_JSON_FILE, WEIGHTS_FILE]);

    for (const url of [`${FILE_SCHEME}${dir}`, `${FILE_SCHEME}${path.join(dir, MODEL_JSON_FILE)}`]) {
      const loaded = await tfl.loadLayersModel(url);
      expect(loaded.layers.map((l) => l.name)).toEqual(model.layers.map((l) => l.name));
      const expected = model.predict(x) as tf.Tensor;
      const actual = loaded.predict(x) as tf.Tensor;
      expect(Array.from(actual.dataSync())).toEqual(Array.from(expected.dataSync()));
      tf.dispose([expected, actual]);
      loaded.dispose();
    }
    tf.dispose(x);
    model.dispose();
  });

  it('overwrites an existing save, keeps other files there and leaves no temporary files', async () => {
    const dir = await savedModelDir('overwrite');
    await writeFile(path.join(dir, 'notes.txt'), 'kept');
    const model = smallModel();
    await model.save(`${FILE_SCHEME}${dir}`);
    expect((await readdir(dir)).sort()).toEqual([MODEL_JSON_FILE, 'notes.txt', WEIGHTS_FILE]);
    expect(await readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('kept');
    const loaded = await tfl.loadLayersModel(`${FILE_SCHEME}${dir}`);
    const [expected, actual] = [model.getWeights()[0], loaded.getWeights()[0]];
    expect(Array.from(actual?.dataSync() ?? [])).toEqual(Array.from(expected?.dataSync() ?? []));
    loaded.dispose();
    model.dispose();
  });

  it('saves extra files with the model', async () => {
    const dir = path.join(root, 'extra');
    const model = smallModel();
    await model.save(
      fileSystem(dir, { extraFiles: { 'notes.json': '{"a":1}', 'state.bin': new Uint8Array([1, 2]) } }),
    );
    model.dispose();
    expect((await readdir(dir)).sort()).toEqual([MODEL_JSON_FILE, 'notes.json', 'state.bin', WEIGHTS_FILE]);
    expect([...(await readFile(path.join(dir, 'state.bin')))]).toEqual([1, 2]);
  });

  it('names a model directory that is a file, on load and on save, and leaves the file alone', async () => {
    const file = path.join(root, 'a-file');
    await writeFile(file, 'not a model');
    const error = await loadError(file);
    expect(error.problem).toBe('not-a-directory');
    expect(error.file).toBe(file);
    expect(error.message).toBe(
      `Cannot load the model from ${file}: a file stands where a folder is expected (ENOTDIR). ` +
        'Point at a folder, not at a file (or move the file out of the way).',
    );
    const model = smallModel();
    const saveError: unknown = await model.save(fileSystem(file)).catch((e: unknown) => e);
    model.dispose();
    expect(saveError).toBeInstanceOf(ModelFileError);
    expect((saveError as ModelFileError).problem).toBe('not-a-directory');
    expect((saveError as ModelFileError).message).toMatch(
      /^Cannot save the model to .*a-file: a file stands where/,
    );
    expect(await readFile(file, 'utf8')).toBe('not a model');
    expect((await readdir(root)).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('keeps the model saved before when the disk fills up during a save', async () => {
    const disk = await mountSmallDisk(64 * 1024);
    const tensors = tf.memory().numTensors;
    try {
      const dir = path.join(disk.dir, 'model');
      const small = smallModel();
      await small.save(fileSystem(dir));
      const before = await readFile(path.join(dir, WEIGHTS_FILE));
      // 100k float32 weights (400 KB) cannot fit on a 64 KB disk.
      const input = tfl.input({ shape: [1000] });
      const big = tfl.model({
        inputs: input,
        outputs: tfl.layers.dense({ units: 100 }).apply(input) as tfl.SymbolicTensor,
      });
      const error: unknown = await big.save(fileSystem(dir)).catch((e: unknown) => e);
      big.dispose();
      expect(error).toBeInstanceOf(ModelFileError);
      expect((error as ModelFileError).problem).toBe('disk-full');
      expect((error as ModelFileError).message).toBe(
        `Cannot save the model to ${dir}: no space is left on the device (ENOSPC). Free some space, or choose a ` +
          'folder on another disk, and run again. A model saved there before is left as it was.',
      );
      expect((await readdir(dir)).sort()).toEqual([MODEL_JSON_FILE, WEIGHTS_FILE]);
      expect(await readFile(path.join(dir, WEIGHTS_FILE))).toEqual(before);
      const loaded = await tfl.loadLayersModel(fileSystem(dir));
      expect(loaded.countParams()).toBe(small.countParams());
      loaded.dispose();
      small.dispose();
      // Nothing half-written is left on the disk either (a new directory is staged beside its target).
      const fresh = path.join(disk.dir, 'fresh');
      const again = tfl.model({
        inputs: input,
        outputs: tfl.layers.dense({ units: 100 }).apply(input) as tfl.SymbolicTensor,
      });
      await expect(again.save(fileSystem(fresh))).rejects.toThrow(ModelFileError);
      again.dispose();
      expect(await readdir(disk.dir)).toEqual(['model']);
      expect(tf.memory().numTensors).toBe(tensors);
    } finally {
      await disk.unmount();
    }
  });

  it('names a read-only disk, also where a folder is missing', async () => {
    const disk = await mountSmallDisk(64 * 1024, { readOnly: true });
    try {
      const dir = path.join(disk.dir, 'nested', 'model');
      const model = smallModel();
      const error: unknown = await model.save(fileSystem(dir)).catch((e: unknown) => e);
      model.dispose();
      expect(error).toBeInstanceOf(ModelFileError);
      expect(error).toMatchObject({ problem: 'read-only', file: dir });
      expect((error as Error).message).toMatch(
        /: the file system is read-only \(EROFS\)\. Choose a folder on a writable disk\./,
      );
    } finally {
      await disk.unmount();
    }
  });

  it.each([
    ['ENOTDIR', 'not-a-directory'],
    ['EISDIR', 'is-a-directory'],
    ['EACCES', 'permission-denied'],
    ['EPERM', 'permission-denied'],
    ['EROFS', 'read-only'],
    ['ENOSPC', 'disk-full'],
    ['EDQUOT', 'disk-full'],
  ])('maps %s to the problem %s, and leaves other errors alone', (code, problem) => {
    const error = Object.assign(new Error(`${code}: from the system`), { code });
    expect(fileSystemFailure(error)).toMatchObject({ code, problem });
    expect(fileSystemFailure(Object.assign(new Error('other'), { code: 'EIO' }))).toBeNull();
    expect(fileSystemFailure(new TypeError('not a file-system error'))).toBeNull();
  });

  it('names a missing directory', async () => {
    const error = await loadError(path.join(root, 'does-not-exist'));
    expect(error.problem).toBe('missing-directory');
    expect(error.message).toMatch(/does-not-exist does not exist/);
  });

  it('names a missing model.json', async () => {
    const dir = await savedModelDir('no-json');
    await unlink(path.join(dir, MODEL_JSON_FILE));
    const error = await loadError(dir);
    expect(error.problem).toBe('missing-model-json');
    expect(error.file).toBe(path.join(dir, MODEL_JSON_FILE));
  });

  it.each([
    ['not JSON', '{"modelTopology": '],
    ['no topology', '{"weightsManifest": []}'],
    ['a bad manifest', '{"modelTopology": {}, "weightsManifest": [{"paths": "weights.bin"}]}'],
  ])('names a corrupt model.json (%s)', async (_case, text) => {
    const dir = await savedModelDir(`corrupt-${_case.replace(/\W/g, '-')}`);
    await writeFile(path.join(dir, MODEL_JSON_FILE), text);
    const error = await loadError(dir);
    expect(error.problem).toBe('corrupt-model-json');
    expect(error.message).toMatch(/not a valid tfjs model\.json/);
  });

  it('names a missing weights file', async () => {
    const dir = await savedModelDir('no-weights');
    await unlink(path.join(dir, WEIGHTS_FILE));
    const error = await loadError(dir);
    expect(error.problem).toBe('missing-weights');
    expect(error.file).toBe(path.join(dir, WEIGHTS_FILE));
  });

  it('names a weights file of the wrong size', async () => {
    const dir = await savedModelDir('truncated');
    const weights = path.join(dir, WEIGHTS_FILE);
    const size = (await readFile(weights)).byteLength;
    await truncate(weights, size - 4);
    const error = await loadError(dir);
    expect(error.problem).toBe('weights-size-mismatch');
    expect(error.message).toContain(`holds ${size - 4} bytes but ${MODEL_JSON_FILE} describes ${size}`);
  });

  it('registers one router however often the engine is initialised', async () => {
    await initEngine({ backend: 'cpu' });
    registerFileRouter();
    expect(tf.io.getSaveHandlers(`${FILE_SCHEME}${root}`)).toHaveLength(1);
    expect(tf.io.getLoadHandlers(`${FILE_SCHEME}${root}`)).toHaveLength(1);
    // Other schemes are not ours (and tfjs has no other handler for them in Node).
    expect(tf.io.getSaveHandlers('indexeddb://model')).toEqual([]);
  });

  it('surfaces the typed error through tf.loadLayersModel', async () => {
    await expect(tfl.loadLayersModel(`${FILE_SCHEME}${path.join(root, 'nowhere')}`)).rejects.toThrow(
      ModelFileError,
    );
  });
});
