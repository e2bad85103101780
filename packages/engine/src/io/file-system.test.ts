import { mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../backends.js';
import {
  FILE_SCHEME,
  fileSystem,
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

  it('overwrites an existing save and leaves no temporary files', async () => {
    const dir = await savedModelDir('overwrite');
    const model = smallModel();
    await model.save(`${FILE_SCHEME}${dir}`);
    expect((await readdir(dir)).sort()).toEqual([MODEL_JSON_FILE, WEIGHTS_FILE]);
    const loaded = await tfl.loadLayersModel(`${FILE_SCHEME}${dir}`);
    const [expected, actual] = [model.getWeights()[0], loaded.getWeights()[0]];
    expect(Array.from(actual?.dataSync() ?? [])).toEqual(Array.from(expected?.dataSync() ?? []));
    loaded.dispose();
    model.dispose();
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
