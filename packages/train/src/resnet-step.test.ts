import { createGradientComputer, type GradientResult, initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

const BATCH = 2;

/** One ResNet-20 (option B, the reference recipe's) training step through the engine on `backend`. */
async function resnet20Step(backend: 'cpu' | 'wasm'): Promise<GradientResult> {
  await initEngine({ backend });
  const model = createCifarResNet({ arch: 'resnet20', shortcut: 'B', init: 'pytorch', seed: 7 });
  const images = tf.tidy(
    () => tf.randomNormal([BATCH, 32, 32, 3], 0, 1, 'float32', 11).dataSync() as Float32Array,
  );
  const computer = await createGradientComputer({ model, workers: 0, numClasses: 10 });
  try {
    return await computer.compute({ images, labels: Int32Array.from([3, 8]), count: BATCH });
  } finally {
    await computer.close();
    model.dispose();
  }
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  let difference = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    difference += ((actual[i] as number) - (expected[i] as number)) ** 2;
    norm += (expected[i] as number) ** 2;
  }
  return Math.sqrt(difference / Math.max(norm, 1e-30));
}

describe('a whole ResNet-20 training step on the default engine', () => {
  it('gives the cpu backend’s loss and every weight gradient (wasm kernels, fused BatchNorm)', async () => {
    const reference = await resnet20Step('cpu');
    const wasm = await resnet20Step('wasm');
    expect(Math.abs(wasm.loss - reference.loss)).toBeLessThan(1e-4 * Math.abs(reference.loss));
    expect(wasm.gradients).toHaveLength(reference.gradients.length);
    const errors = wasm.gradients.map((g, i) => relativeError(g, reference.gradients[i] as Float32Array));
    expect(
      Math.max(...errors),
      `relative errors per weight: ${errors.map((e) => e.toExponential(1))}`,
    ).toBeLessThan(1e-4);
  }, 120_000);
});
