import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { GradientMismatchError, InvalidTrainingOptionError } from './errors.js';
import { SgdOptimizer, type SgdOptions } from './sgd.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

/** A dense layer 2 → 1 with kernel [[1], [-2]] (rank 2) and bias [3] (rank 1). */
function denseModel(): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ units: 1, inputShape: [2], name: 'fc' })],
  });
  model.setWeights([tf.tensor2d([[1], [-2]]), tf.tensor1d([3])]);
  return model;
}

const grads = [new Float32Array([0.5, 0.25]), new Float32Array([1])];

function run(options: SgdOptions, steps: number): { kernel: number[]; bias: number[] } {
  const model = denseModel();
  const sgd = new SgdOptimizer(model.trainableWeights, options);
  for (let i = 0; i < steps; i++) sgd.step(grads, 0.1);
  const [kernel, bias] = model.getWeights();
  return { kernel: Array.from(kernel!.dataSync()), bias: Array.from(bias!.dataSync()) };
}

function expectClose(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  for (const [i, value] of expected.entries()) expect(actual[i]).toBeCloseTo(value, 6);
}

describe('SgdOptimizer', () => {
  it('plain SGD: w -= lr·grad', () => {
    const { kernel, bias } = run({}, 2);
    expectClose(kernel, [0.9, -2.05]);
    expectClose(bias, [2.8]);
  });

  it('momentum and weight decay on all weights, PyTorch order (grad += λw; buf = μbuf + grad; w -= lr·buf)', () => {
    // Hand-computed, kernel: step 1 g = [0.51, 0.23], w = [0.949, -2.023];
    // step 2 g = [0.50949, 0.22977], buf = [0.96849, 0.43677], w = [0.852151, -2.066677].
    // Bias: step 1 g = 1.03, w = 2.897; step 2 g = 1.02897, buf = 1.95597, w = 2.701403.
    const { kernel, bias } = run({ momentum: 0.9, weightDecay: 0.01 }, 2);
    expectClose(kernel, [0.852151, -2.066677]);
    expectClose(bias, [2.701403]);
  });

  it('Nesterov: w -= lr·(grad + μ·buf)', () => {
    // Step 1 d = 1.9·[0.51, 0.23], w = [0.9031, -2.0437]; step 2 g = [0.509031, 0.229563],
    // buf = [0.968031, 0.436563], d = [1.3802589, 0.6224697], w = [0.76507411, -2.10594697].
    const { kernel } = run({ momentum: 0.9, nesterov: true, weightDecay: 0.01 }, 2);
    expectClose(kernel, [0.76507411, -2.10594697]);
  });

  it("decays only kernels (rank ≥ 2) with weightDecayScope 'kernels'", () => {
    const { kernel, bias } = run({ momentum: 0.9, weightDecay: 0.01, weightDecayScope: 'kernels' }, 2);
    expectClose(kernel, [0.852151, -2.066677]);
    // Bias without decay: buf = 1, then 1.9 → w = 3 - 0.1 - 0.19.
    expectClose(bias, [2.71]);
  });

  it('exports and imports momentum buffers so a restored optimizer continues identically', () => {
    const a = denseModel();
    const sgdA = new SgdOptimizer(a.trainableWeights, { momentum: 0.9 });
    sgdA.step(grads, 0.1);
    const b = denseModel();
    b.setWeights(a.getWeights());
    const sgdB = new SgdOptimizer(b.trainableWeights, { momentum: 0.9 });
    sgdB.setState(sgdA.getState());
    sgdA.step(grads, 0.1);
    sgdB.step(grads, 0.1);
    expect(b.getWeights()[0]!.dataSync()).toEqual(a.getWeights()[0]!.dataSync());
    expect(sgdA.getState().names).toEqual(['fc/kernel', 'fc/bias']);
  });

  it('does not leak tensors across steps', () => {
    const model = denseModel();
    const sgd = new SgdOptimizer(model.trainableWeights, { momentum: 0.9, weightDecay: 1e-4 });
    sgd.step(grads, 0.1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) sgd.step(grads, 0.1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects gradients that do not match the weights, and bad options', () => {
    const model = denseModel();
    const sgd = new SgdOptimizer(model.trainableWeights);
    expect(() => sgd.step([grads[0]!], 0.1)).toThrow(GradientMismatchError);
    expect(() => sgd.step([grads[0]!, new Float32Array(2)], 0.1)).toThrow(/fc\/bias/);
    expect(() => new SgdOptimizer(model.trainableWeights, { momentum: 1.5 })).toThrow(
      InvalidTrainingOptionError,
    );
    expect(() => new SgdOptimizer(model.trainableWeights, { nesterov: true })).toThrow(/momentum > 0/);
  });
});
