import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { cutModel, downstreamFrontier, type TensorRef } from './cut.js';
import { UnsupportedModelError } from './errors.js';
import { inferenceModel } from './inference.js';
import { applyStrategy } from './surgery.js';
import { identityStrategy } from './test/identity-strategy.js';
import { smallResidualModel } from './test/models.js';
import { relativeDifference } from './testing.js';

beforeAll(async () => {
  await initEngine();
});

const inputOf = (model: LayersModel): TensorRef => ({ layer: model.inputLayers[0]!.name, output: 0 });

/**
 * The model's output computed in two halves: the frontier of `layer` in `model` from the images, then
 * `rewritten` from it, each half passed through `finish` (e.g. BatchNorm folding) before it runs.
 */
function throughFrontier(
  model: LayersModel,
  rewritten: LayersModel,
  layer: string,
  x: tf.Tensor,
  finish: (half: LayersModel) => LayersModel = (half) => half,
): tf.Tensor {
  const frontier = downstreamFrontier(model, [layer]);
  const prefix = cutModel(model, { inputs: [inputOf(model)], outputs: frontier });
  const suffix = cutModel(rewritten, { inputs: frontier });
  const [first, second] = [finish(prefix.model), finish(suffix.model)];
  try {
    return tf.tidy(() => {
      const predicted = first.predict(x);
      const values = Array.isArray(predicted) ? predicted : [predicted];
      const byName = new Map(frontier.map((ref, i) => [`${ref.layer}:${ref.output}`, values[i]!]));
      return second.predict(
        suffix.inputs.map((ref) => byName.get(`${ref.layer}:${ref.output}`)!),
      ) as tf.Tensor;
    });
  } finally {
    for (const half of new Set([prefix.model, suffix.model, first, second])) half.dispose();
  }
}

describe('downstreamFrontier', () => {
  it('is the block input for a residual block’s first conv, its activation and the skip tensor for the second', () => {
    const model = smallResidualModel();
    expect(downstreamFrontier(model, ['block.conv1'])).toEqual([{ layer: 'stem.relu', output: 0 }]);
    expect(downstreamFrontier(model, ['block.conv2'])).toEqual([
      { layer: 'block.conv1', output: 0 },
      { layer: 'stem.relu', output: 0 },
    ]);
    expect(downstreamFrontier(model, ['stem.conv'])).toEqual([{ layer: 'image', output: 0 }]);
    expect(downstreamFrontier(model, ['head'])).toEqual([{ layer: 'pool', output: 0 }]);
    model.dispose();
  });
});

describe('cutModel', () => {
  let model: LayersModel;
  let x: tf.Tensor;
  beforeAll(() => {
    model = smallResidualModel();
    x = tf.randomNormal([3, 8, 8, 3], 0, 1, 'float32', 2);
  });

  it('splits the model at any layer’s frontier into halves that compute its output', () => {
    const want = model.predict(x) as tf.Tensor;
    for (const layer of ['stem.conv', 'block.conv1', 'block.conv2', 'down.conv', 'down.frozen', 'head']) {
      const got = throughFrontier(model, model, layer, x);
      expect(relativeDifference(got, want), layer).toBeLessThan(1e-5);
      got.dispose();
    }
    want.dispose();
  });

  it('runs a rewritten copy of the model from the frontier of the original', () => {
    const surgery = applyStrategy(model, identityStrategy, { layers: ['block.conv2'] });
    const want = surgery.model.predict(x) as tf.Tensor;
    const got = throughFrontier(model, surgery.model, 'block.conv2', x);
    expect(relativeDifference(got, want)).toBeLessThan(1e-5);
    tf.dispose([want, got]);
    surgery.model.dispose();
  });

  it('copies only the layers between, starts at the known tensors its outputs need, and leaks no tensors', () => {
    const frontier = downstreamFrontier(model, ['block.conv2']);
    const known = [inputOf(model), ...frontier];
    const middle = cutModel(model, { inputs: known, outputs: [{ layer: 'block.relu', output: 0 }] });
    expect(middle.inputs).toEqual(frontier);
    expect(middle.model.layers.map((l) => l.name)).toEqual([
      'block.conv1',
      'stem.relu',
      'block.conv2',
      'block.add',
      'block.relu',
    ]);
    middle.model.dispose();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) throughFrontier(model, model, 'block.conv2', x).dispose();
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('refuses a cut whose outputs need a model input that is not known', () => {
    expect(() => cutModel(model, { inputs: [{ layer: 'block.conv1', output: 0 }] })).toThrow(
      UnsupportedModelError,
    );
  });
});

describe('cutModel on ResNet-20', () => {
  it('computes the output from every 3×3 conv’s frontier, with both halves BatchNorm-folded', () => {
    const resnet = createCifarResNet({ arch: 'resnet20', shortcut: 'B', seed: 1 });
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 4);
    const want = resnet.predict(x) as tf.Tensor;
    const convs = resnet.layers
      .filter((l) => l.getClassName() === 'Conv2D' && l.getConfig().kernelSize?.toString() === '3,3')
      .map((l) => l.name);
    expect(convs).toHaveLength(19);
    for (const layer of convs) {
      const got = throughFrontier(resnet, resnet, layer, x, (half) => inferenceModel(half).model);
      expect(relativeDifference(got, want), layer).toBeLessThan(1e-5);
      got.dispose();
    }
    tf.dispose([want, x]);
    resnet.dispose();
  });
});
