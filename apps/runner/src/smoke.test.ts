import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { formatSmoke, runSmoke } from './smoke.js';

it('times a convolution on the default backend without leaking tensors', async () => {
  const result = await runSmoke();
  const before = tf.memory().numTensors;
  const again = await runSmoke();
  expect(tf.memory().numTensors).toBe(before);
  expect(result.forwardMs).toBeGreaterThan(0);
  expect(formatSmoke(again)[0]).toMatch(/^backend: /);
});
