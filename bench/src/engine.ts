import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BackendName, createGradientComputer, initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type KernelTime, startKernelTimer } from './kernel-timer.js';
import { captureStockKernels, restoreStockKernels } from './stock-kernels.js';

// CIFAR ResNet-20 train step (forward + backward + SGD update) and eval throughput per backend and worker
// count, on synthetic images. Usage: node bench/dist/engine.js [--steps N] [--batch N]
// [--configs backend[-conv-only]:workers[@batch],…]; default wasm:0,wasm-conv-only:0,wasm:2,cpu:0@2.
// In-run references: `wasm-conv-only` (only the engine's conv gradient kernels, stock tfjs for everything else:
// the stock wasm backend cannot train convolutions at all) and `cpu` (one step at batch 2).

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
  eval_img_per_s: number;
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

async function measure(config: Config, batch: number, steps: number): Promise<EngineRecord> {
  await initEngine({ backend: config.backend });
  if (config.kernels === 'conv-only') restoreStockKernels(stock);
  const model = createCifarResNet({ depth: 20, shortcut: 'A' });
  const data = syntheticBatch(batch);
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
    // The cpu backend needs minutes per step: one timed step, no warm-up (it has nothing to warm up).
    const timedSteps = config.backend === 'cpu' ? 1 : steps;
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
    const trainStart = performance.now();
    const trainCpuStart = process.cpuUsage();
    for (let i = 0; i < timedSteps; i++) await step();
    const trainMs = (performance.now() - trainStart) / timedSteps;
    const trainCpu = process.cpuUsage(trainCpuStart);
    const trainCpuMs = (trainCpu.user + trainCpu.system) / 1000 / timedSteps;

    const images = tf.tensor4d(data.images, [batch, 32, 32, 3]);
    const evaluate = (): void => tf.tidy(() => void (model.predict(images) as tf.Tensor).dataSync());
    evaluate();
    const evalStart = performance.now();
    const evalCpuStart = process.cpuUsage();
    for (let i = 0; i < timedSteps; i++) evaluate();
    const evalMs = (performance.now() - evalStart) / timedSteps;
    const evalCpu = process.cpuUsage(evalCpuStart);
    const evalCpuMs = (evalCpu.user + evalCpu.system) / 1000 / timedSteps;
    images.dispose();
    return {
      ...config,
      batch,
      steps: timedSteps,
      train_step_ms: round(trainMs),
      train_step_cpu_ms: round(trainCpuMs),
      train_img_per_cpu_s: round((batch * 1000) / trainCpuMs),
      train_img_per_s: round((batch * 1000) / trainMs),
      eval_img_per_s: round((batch * 1000) / evalMs),
      eval_img_per_cpu_s: round((batch * 1000) / evalCpuMs),
      top_kernels: top.slice(0, 10).map((k) => ({ ...k, ms: round(k.ms), cpu_ms: round(k.cpu_ms) })),
    };
  } finally {
    await computer.close();
    model.dispose();
  }
}

/** One decimal, or three significant digits below 10 (the cpu backend's rates are fractions of an image). */
function round(value: number): number {
  return value >= 10 ? Math.round(value * 10) / 10 : Number(value.toPrecision(3));
}

async function writeJsonAtomically(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(temp, file);
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
    'backend  workers  batch  train img/s  (per cpu-s)  eval img/s  (per cpu-s)  step ms  step cpu ms',
  );
  for (const config of configs) {
    const record = await measure(config, config.batch ?? batch, steps);
    records.push(record);
    console.log(
      `${(record.kernels === 'conv-only' ? `${record.backend}*` : record.backend).padEnd(8)} ${String(record.workers).padStart(7)} ${String(record.batch).padStart(6)} ` +
        `${String(record.train_img_per_s).padStart(12)} ${String(record.train_img_per_cpu_s).padStart(12)} ` +
        `${String(record.eval_img_per_s).padStart(11)} ${String(record.eval_img_per_cpu_s).padStart(12)} ` +
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
    'wasm* = only the engine conv gradient kernels; stock tfjs-core gradients and wasm kernels otherwise',
  );
  const out = fileURLToPath(new URL('../results/engine.json', import.meta.url));
  await writeJsonAtomically(out, {
    date: new Date().toISOString(),
    model: 'createCifarResNet depth 20 shortcut A',
    records,
  });
  console.log(`wrote ${out}`);
}

await main();
