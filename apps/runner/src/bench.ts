import { NUM_CLASSES, PIXELS_PER_IMAGE } from '@decompose/cifar10';
import { createGradientComputer, type EngineInfo, initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import type { BenchConfig } from './config.js';
import type { Console } from './progress.js';

/** Throughput of one model on the active backend (random images; one warm-up step excluded). */
export interface BenchResult {
  backend: EngineInfo['backend'];
  model: string;
  batch: number;
  steps: number;
  workers: number;
  /** Forward + backward (loss and gradients, no optimizer step) images per second. */
  trainImagesPerSecond: number;
  /** Inference forward images per second. */
  evalImagesPerSecond: number;
}

/**
 * `decompose bench`: a quick measurement of training (gradient) and inference throughput of a freshly built
 * model on random images. The thorough benchmarks are the repository's `pnpm bench:*` scripts.
 */
export async function runBench(config: BenchConfig, out: Console): Promise<BenchResult> {
  const engine = await initEngine();
  const model = createCifarResNet({ arch: config.model, shortcut: config.shortcut, init: config.init });
  const { batch, steps, workers } = config;
  const images = Float32Array.from({ length: batch * PIXELS_PER_IMAGE }, () => Math.random() * 2 - 1);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % NUM_CLASSES);
  const computer = await createGradientComputer({ model, workers, numClasses: NUM_CLASSES });
  try {
    const bar = out.progress(`bench ${config.model}`, 2 * (steps + 1));
    await computer.compute({ images, labels, count: batch });
    bar.update(1);
    let started = performance.now();
    for (let i = 0; i < steps; i++) {
      await computer.compute({ images, labels, count: batch });
      bar.update(2 + i);
    }
    const trainSeconds = (performance.now() - started) / 1000;
    const input = tf.tensor4d(images, [batch, 32, 32, 3]);
    const predict = async () => {
      const logits = model.predict(input) as tf.Tensor;
      await logits.data();
      logits.dispose();
    };
    await predict();
    bar.update(steps + 2);
    started = performance.now();
    for (let i = 0; i < steps; i++) {
      await predict();
      bar.update(steps + 3 + i);
    }
    const evalSeconds = (performance.now() - started) / 1000;
    input.dispose();
    bar.stop();
    const result: BenchResult = {
      backend: engine.backend,
      model: config.model,
      batch,
      steps,
      workers,
      trainImagesPerSecond: (batch * steps) / trainSeconds,
      evalImagesPerSecond: (batch * steps) / evalSeconds,
    };
    out.result(
      `${result.model} on ${result.backend}, batch ${batch}, ${workers} workers: ` +
        `train (fwd+bwd) ${result.trainImagesPerSecond.toFixed(0)} img/s, eval ${result.evalImagesPerSecond.toFixed(0)} img/s`,
    );
    return result;
  } finally {
    await computer.close();
    model.dispose();
  }
}
