import { fileURLToPath } from 'node:url';
import { inferenceModel } from '@decompose/core';
import {
  type BackendName,
  createGradientComputer,
  type GradientComputer,
  initEngine,
} from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type KernelTime, startKernelTimer } from './kernel-timer.js';
import { writeAtomically } from './output.js';
import { captureStockKernels, restoreStockKernels } from './stock-kernels.js';

// CIFAR ResNet-20 train step (forward + backward + SGD update) and eval throughput per backend and worker
// count, on synthetic images. Usage: node bench/dist/engine.js [--steps N] [--batch N]
// [--configs backend[-conv-only]:workers[@batch],…]; default wasm:0,wasm-conv-only:0,wasm:2,cpu:0@2.
// In-run references: `wasm-conv-only` (only the engine's conv gradient kernels, stock tfjs for everything else:
// the stock wasm backend cannot train convolutions at all) and `cpu` (one step at batch 2).
// Eval runs the trained model on the eval path (core's `inferenceModel`: BatchNorms folded, activations fused), on this
// thread or, in worker rows, split over the workers; `eval_baseline_img_per_s` is the in-run reference: the
// unfolded model's `model.predict` on this thread, as the bench measured eval before.

interface Config {
  backend: BackendName;
  workers: number;
  /** `conv-only`: only the engine's conv gradient kernels, stock tfjs for the rest (BatchNorm's gradient…). */
  kernels: 'engine' | 'conv-only';
  /** Overrides --batch for this row (the cpu backend needs minutes per step at batch 128). */
  batch?: number;
}

interface EngineRecord extends Config {
  batch: number;
  train_img_per_s: number;
  /** Eval of `eval_model` on `eval_on`, predicting whole batches. */
  eval_img_per_s: number;
  eval_model: 'bn-folded';
  /** `workers` in worker rows: each worker predicts a slice of the batch. */
  eval_on: 'main-thread' | 'workers';
  /** In-run reference: the unfolded model's `model.predict` (batches of 32) on this thread. */
  eval_baseline_img_per_s: number;
  eval_baseline_img_per_cpu_s: number;
  /** Top-10 kernels of one in-thread train step (empty for worker and cpu rows). */
  top_kernels: KernelTime[];
  train_step_ms: number;
  /** CPU time of this process per train step (all threads): robust to other programs sharing the cores. */
  train_step_cpu_ms: number;
  /** batch / CPU seconds per step: what one core would give if it were not shared. */
  train_img_per_cpu_s: number;
  eval_img_per_cpu_s: number;
  steps: number;
}

const NUM_CLASSES = 10;
const stock = await captureStockKernels();
const LEARNING_RATE = 0.01;

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

function syntheticBatch(count: number): { images: Float32Array; labels: Int32Array; count: number } {
  const images = new Float32Array(count * 32 * 32 * 3);
  for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 12.9898) * 0.5;
  const labels = Int32Array.from({ length: count }, (_, i) => i % NUM_CLASSES);
  return { images, labels, count };
}

function sgdUpdate(model: LayersModel, gradients: Float32Array[]): void {
  tf.tidy(() => {
    model.trainableWeights.forEach((weight, i) => {
      const value = weight.read();
      const gradient = tf.tensor(gradients[i] as Float32Array, value.shape);
      weight.write(tf.sub(value, tf.mul(gradient, LEARNING_RATE)));
    });
  });
}

/** Wall-clock and process CPU milliseconds (all threads) per call of `run`, over `steps` calls. */
async function timed(run: () => Promise<void>, steps: number): Promise<{ ms: number; cpuMs: number }> {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  for (let i = 0; i < steps; i++) await run();
  const cpu = process.cpuUsage(cpuStart);
  return { ms: (performance.now() - start) / steps, cpuMs: (cpu.user + cpu.system) / 1000 / steps };
}

type TrainFigures = Pick<
  EngineRecord,
  'train_step_ms' | 'train_step_cpu_ms' | 'train_img_per_cpu_s' | 'train_img_per_s' | 'top_kernels'
>;

async function measureTraining(
  config: Config,
  model: LayersModel,
  data: ReturnType<typeof syntheticBatch>,
  timedSteps: number,
): Promise<TrainFigures> {
  const computer = await createGradientComputer({
    model,
    workers: config.workers,
    numClasses: NUM_CLASSES,
    backend: config.backend,
  });
  try {
    const step = async (): Promise<void> => {
      const result = await computer.compute(data);
      sgdUpdate(model, result.gradients);
    };
    // The cpu backend has nothing to warm up and needs minutes per step.
    if (config.backend !== 'cpu') await step(); // warm-up: first-call allocations, XNNPACK operator creation
    let top: KernelTime[] = [];
    // Per-kernel times only where kernels run in this thread, and not on cpu (minutes per step).
    if (config.workers === 0 && config.backend !== 'cpu') {
      const stop = startKernelTimer(config.backend);
      try {
        await step();
      } finally {
        top = stop();
      }
    }
    const train = await timed(step, timedSteps);
    return {
      train_step_ms: round(train.ms),
      train_step_cpu_ms: round(train.cpuMs),
      train_img_per_cpu_s: round((data.count * 1000) / train.cpuMs),
      train_img_per_s: round((data.count * 1000) / train.ms),
      top_kernels: top.slice(0, 10).map((k) => ({ ...k, ms: round(k.ms), cpu_ms: round(k.cpu_ms) })),
    };
  } finally {
    await computer.close();
  }
}

type EvalFigures = Pick<
  EngineRecord,
  | 'eval_img_per_s'
  | 'eval_img_per_cpu_s'
  | 'eval_model'
  | 'eval_on'
  | 'eval_baseline_img_per_s'
  | 'eval_baseline_img_per_cpu_s'
>;

/** Eval of the model as trained: BatchNorms folded, on the workers in worker rows; and the in-run baseline. */
async function measureEval(
  config: Config,
  model: LayersModel,
  data: ReturnType<typeof syntheticBatch>,
  timedSteps: number,
): Promise<EvalFigures> {
  const images = tf.tensor4d(data.images, [data.count, 32, 32, 3]);
  const folded = inferenceModel(model).model;
  let computer: GradientComputer | undefined;
  try {
    const baseline = async (): Promise<void> =>
      tf.tidy(() => void (model.predict(images) as tf.Tensor).dataSync());
    await baseline();
    const baselineTime = await timed(baseline, timedSteps);
    if (config.workers > 0) {
      computer = await createGradientComputer({
        model: folded,
        workers: config.workers,
        numClasses: NUM_CLASSES,
        backend: config.backend,
      });
    }
    const predictor = computer;
    const evaluate = predictor
      ? async (): Promise<void> => void (await predictor.predict(data))
      : async (): Promise<void> =>
          tf.tidy(() => void (folded.predict(images, { batchSize: data.count }) as tf.Tensor).dataSync());
    await evaluate(); // warm-up
    const evalTime = await timed(evaluate, timedSteps);
    return {
      eval_img_per_s: round((data.count * 1000) / evalTime.ms),
      eval_img_per_cpu_s: round((data.count * 1000) / evalTime.cpuMs),
      eval_model: 'bn-folded',
      eval_on: predictor ? 'workers' : 'main-thread',
      eval_baseline_img_per_s: round((data.count * 1000) / baselineTime.ms),
      eval_baseline_img_per_cpu_s: round((data.count * 1000) / baselineTime.cpuMs),
    };
  } finally {
    await computer?.close();
    folded.dispose();
    images.dispose();
  }
}

async function measure(config: Config, batch: number, steps: number): Promise<EngineRecord> {
  await initEngine({ backend: config.backend });
  if (config.kernels === 'conv-only') restoreStockKernels(stock);
  const model = createCifarResNet({ depth: 20, shortcut: 'A' });
  const data = syntheticBatch(batch);
  // The cpu backend needs minutes per step: one timed step.
  const timedSteps = config.backend === 'cpu' ? 1 : steps;
  try {
    const train = await measureTraining(config, model, data, timedSteps);
    const evaluation = await measureEval(config, model, data, timedSteps);
    return { ...config, batch, steps: timedSteps, ...train, ...evaluation };
  } finally {
    model.dispose();
  }
}

/** One decimal, or three significant digits below 10 (the cpu backend's rates are fractions of an image). */
function round(value: number): number {
  return value >= 10 ? Math.round(value * 10) / 10 : Number(value.toPrecision(3));
}

async function main(): Promise<void> {
  const batch = Number(argument('batch', '128'));
  const steps = Number(argument('steps', '3'));
  const configs: Config[] = argument('configs', 'wasm:0,wasm-conv-only:0,wasm:2,cpu:0@2')
    .split(',')
    .map((entry) => {
      const [name = 'wasm', rest = '0'] = entry.split(':');
      const [workers, rowBatch] = rest.split('@');
      const convOnly = name.endsWith('-conv-only');
      return {
        backend: name.replace('-conv-only', '') as BackendName,
        kernels: convOnly ? 'conv-only' : 'engine',
        workers: Number(workers),
        ...(rowBatch === undefined ? {} : { batch: Number(rowBatch) }),
      };
    });
  const records: EngineRecord[] = [];
  console.log(
    'backend  workers  batch  train img/s  (per cpu-s)  eval img/s  (per cpu-s)  baseline  (per cpu-s)  step ms  step cpu ms',
  );
  for (const config of configs) {
    const record = await measure(config, config.batch ?? batch, steps);
    records.push(record);
    console.log(
      `${(record.kernels === 'conv-only' ? `${record.backend}*` : record.backend).padEnd(8)} ${String(record.workers).padStart(7)} ${String(record.batch).padStart(6)} ` +
        `${String(record.train_img_per_s).padStart(12)} ${String(record.train_img_per_cpu_s).padStart(12)} ` +
        `${String(record.eval_img_per_s).padStart(11)} ${String(record.eval_img_per_cpu_s).padStart(12)} ` +
        `${String(record.eval_baseline_img_per_s).padStart(9)} ${String(record.eval_baseline_img_per_cpu_s).padStart(12)} ` +
        `${String(record.train_step_ms).padStart(8)} ` +
        `${String(record.train_step_cpu_ms).padStart(12)}`,
    );
    if (record.top_kernels.length > 0) {
      const topCpuMs = record.top_kernels.reduce((sum, k) => sum + k.cpu_ms, 0);
      for (const k of record.top_kernels) {
        console.log(
          `    ${k.kernel.padEnd(24)} ${k.cpu_ms.toFixed(1).padStart(8)} cpu ms ${k.ms.toFixed(1).padStart(8)} ms ` +
            `${String(k.calls).padStart(5)} calls`,
        );
      }
      console.log(
        `    (top-10 kernels: ${topCpuMs.toFixed(1)} cpu ms of a ${record.train_step_cpu_ms} cpu ms step)`,
      );
    }
  }
  console.log(
    'wasm* = only the engine conv gradient kernels; BatchNorm as tfjs ops, stock wasm kernels otherwise',
  );
  console.log(
    'eval: BatchNorm folded into the convs, on the workers in worker rows; baseline: unfolded, this thread',
  );
  const out = fileURLToPath(new URL('../results/engine.json', import.meta.url));
  await writeAtomically(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), model: 'createCifarResNet depth 20 shortcut A', records }, null, 2)}\n`,
  );
  console.log(`wrote ${out}`);
}

await main();
