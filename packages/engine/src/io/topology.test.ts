import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initEngine } from '../backends.js';
import { fileSystem } from './file-system.js';
import { withSeparableDepthMultipliers } from './topology.js';

let dir: string;
beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  dir = await mkdtemp(path.join(tmpdir(), 'separable-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

function separableModel(): tfl.LayersModel {
  const x = tfl.input({ shape: [8, 8, 3] });
  const y = tfl.layers
    .separableConv2d({ filters: 4, kernelSize: 3, depthMultiplier: 2, name: 'sep', padding: 'same' })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: x, outputs: y });
}

/** The artifacts `model.save` hands over, untouched. */
async function rawArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return saved!;
}

describe('withSeparableDepthMultipliers', () => {
  it('restores the depth multiplier tfjs leaves out, so the saved model reloads and predicts the same', async () => {
    const model = separableModel();
    const raw = await rawArtifacts(model);
    // The upstream bug this works around: without the repair the model does not reload.
    await expect(tfl.loadLayersModel(tf.io.fromMemory(raw))).rejects.toThrow(/Shape mismatch/);
    await model.save(fileSystem(dir));
    const loaded = await tfl.loadLayersModel(fileSystem(dir));
    const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 3);
    const gap = tf.tidy(
      () =>
        tf.max(tf.abs(tf.sub(model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor))).dataSync()[0],
    );
    expect(gap).toBe(0);
    x.dispose();
    model.dispose();
    loaded.dispose();
  });

  it('leaves a topology without separable layers as it is', async () => {
    const x = tfl.input({ shape: [4] });
    const model = tfl.model({
      inputs: x,
      outputs: tfl.layers.dense({ units: 2 }).apply(x) as tfl.SymbolicTensor,
    });
    const raw = await rawArtifacts(model);
    expect(withSeparableDepthMultipliers(raw)).toBe(raw);
    model.dispose();
  });
});
