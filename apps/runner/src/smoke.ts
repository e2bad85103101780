import { type EngineInfo, initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { describeEngine } from './engine-report.js';

/** Timings of one convolution forward and backward pass, in milliseconds. */
export interface SmokeResult {
  engine: EngineInfo;
  forwardMs: number;
  backwardMs: number | null;
  backwardError: string | null;
}

/**
 * Initialises the engine and times one 3×3 convolution (batch 64, 32×32×16) forward and, where the backend
 * can, backward. A backend without convolution gradients reports why instead of failing.
 */
export async function runSmoke(): Promise<SmokeResult> {
  const engine = await initEngine();
  const x = tf.randomNormal([64, 32, 32, 16]);
  const w = tf.randomNormal([3, 3, 16, 16]);
  const time = async (fn: () => tf.Tensor): Promise<number> => {
    const start = performance.now();
    const out = fn();
    await out.data();
    out.dispose();
    return performance.now() - start;
  };
  const forward = () => tf.tidy(() => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'));
  const backward = () =>
    tf.tidy(() =>
      tf.grad((filter: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 1, 'same').sum())(w),
    );
  await time(forward);
  const forwardMs = await time(forward);
  let backwardMs: number | null = null;
  let backwardError: string | null = null;
  // Checked up front: a gradient that throws half-way leaves tensors on the tape.
  if (tf.getKernel('Conv2DBackpropFilter', engine.backend) === undefined) {
    backwardError = `no Conv2DBackpropFilter kernel for backend '${engine.backend}'`;
  } else {
    await time(backward);
    backwardMs = await time(backward);
  }
  tf.dispose([x, w]);
  return { engine, forwardMs, backwardMs, backwardError };
}

/** Human-readable lines for a smoke result; `verbose` gives the engine's full report. */
export function formatSmoke(result: SmokeResult, verbose = false): string[] {
  return [
    ...describeEngine(result.engine, verbose),
    `conv 3x3 forward (64x32x32x16): ${result.forwardMs.toFixed(1)} ms`,
    result.backwardMs === null
      ? `conv 3x3 backward: unavailable on this backend (${result.backwardError})`
      : `conv 3x3 backward (filter gradient): ${result.backwardMs.toFixed(1)} ms`,
  ];
}
