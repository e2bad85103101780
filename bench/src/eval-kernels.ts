import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { inferenceModel } from '@decompose/core';
import { createGradientComputer, initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import {
  Conv2D,
  FusedConv2D,
  getKernel,
  type KernelConfig,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { labelByShapes, startKernelTimer } from './kernel-timer.js';
import { printTable, writeAtomically } from './output.js';
import { median, timeCalls } from './samples.js';

// The forward convolution kernels on CIFAR ResNet-20's eval (option B, BatchNorm folded, as bench:peer and the
// product run it) on this thread: first where the time goes, kernel by kernel and shape by shape; then the
// engine's Conv2D/FusedConv2D against XNNPACK's (the wasm backend's own) and, with --baseline, against those of
// another build of the engine, alternating A B A B in this process on eval at batch 128 and 1 and the train step
// (whose forward convolutions they run). Figures are images per CPU-second of this process: the machine is
// shared, and wall time there mostly measures waiting for a core.
// Usage: node bench/dist/eval-kernels.js [--batch N] [--rounds N] [--min-ms N] [--baseline DIR] [--out FILE].
// --baseline DIR: a copy of another build's packages/engine/dist (e.g. the previous commit's) placed inside
// packages/engine/ so it resolves the same tfjs; its kernels/conv2d-forward.js is compared.
// Writes bench/results/eval-kernels.json.

class EvalKernelsOptionError extends BenchError {
  override readonly name = 'EvalKernelsOptionError';
}

/** The wasm backend lacks a kernel this benchmark swaps. */
class MissingKernelError extends BenchError {
  override readonly name = 'MissingKernelError';
}

interface ProfileRow {
  kernel: string;
  shape: string;
  calls_per_run: number;
  ms_per_run: number;
  cpu_ms_per_run: number;
  percent: number;
  /** Multiply-adds ×2 per second, for convolutions and matrix products. */
  gflops: number | null;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

function shapeOf(inputs: NamedTensorInfoMap, name: string): number[] | undefined {
  return inputs[name]?.shape;
}

/** Floating-point operations (2 per multiply-add) of a convolution or matrix product; 0 for other kernels. */
function flopsOf(kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap | undefined): number {
  if (kernelName === 'Conv2D' || kernelName === 'FusedConv2D') {
    const [n, h, w] = shapeOf(inputs, 'x') as [number, number, number, number];
    const [kh, kw, ci, co] = shapeOf(inputs, 'filter') as [number, number, number, number];
    const strides = attrs?.strides as number | [number, number];
    const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
    return 2 * n * Math.ceil(h / sh) * Math.ceil(w / sw) * kh * kw * ci * co;
  }
  if (kernelName === 'BatchMatMul' || kernelName === '_FusedMatMul') {
    const a = shapeOf(inputs, 'a') as number[];
    const b = shapeOf(inputs, 'b') as number[];
    const rows = a.slice(0, -1).reduce((x, y) => x * y, 1);
    return (
      2 * rows * (a.at(-1) as number) * (attrs?.transposeB ? (b.at(-2) as number) : (b.at(-1) as number))
    );
  }
  return 0;
}

interface Profile {
  batch: number;
  wall_ms: number;
  kernel_ms: number;
  gflop: number;
  rows: ProfileRow[];
}

/** Per-kernel, per-shape times of `runs` calls of `predict` (after two warm-up calls). */
function profile(predict: () => void, batch: number, runs: number): Profile {
  predict();
  predict();
  const flops = new Map<string, number>();
  const stop = startKernelTimer('wasm', (name, inputs, attrs) => {
    const label = labelByShapes(name, inputs, attrs);
    flops.set(label, flopsOf(name, inputs, attrs));
    return label;
  });
  const start = performance.now();
  for (let i = 0; i < runs; i++) predict();
  const wallMs = (performance.now() - start) / runs;
  const times = stop();
  const kernelMs = times.reduce((sum, t) => sum + t.ms, 0) / runs;
  const rows: ProfileRow[] = times
    .map((t) => {
      const [kernel = '', shape = ''] = t.kernel.split('\t');
      const ms = t.ms / runs;
      const work = (flops.get(t.kernel) ?? 0) * (t.calls / runs);
      return {
        kernel,
        shape,
        calls_per_run: t.calls / runs,
        ms_per_run: round(ms, 2),
        cpu_ms_per_run: round(t.cpu_ms / runs, 2),
        percent: round((100 * ms) / kernelMs),
        gflops: work > 0 ? round(work / ms / 1e6) : null,
      };
    })
    .sort((a, b) => b.ms_per_run - a.ms_per_run);
  printTable(
    ['kernel', 'shape', 'calls', 'ms', '%', 'GFLOP/s'],
    rows.map((r) => [
      r.kernel,
      r.shape,
      String(r.calls_per_run),
      r.ms_per_run.toFixed(2),
      r.percent.toFixed(1),
      r.gflops === null ? '' : r.gflops.toFixed(1),
    ]),
  );
  const totalFlops = [...times].reduce((sum, t) => sum + (flops.get(t.kernel) ?? 0) * t.calls, 0) / runs;
  process.stdout.write(
    `\nbatch ${batch}: ${wallMs.toFixed(1)} ms per predict (${((batch * 1000) / wallMs).toFixed(0)} img/s), ` +
      `${kernelMs.toFixed(1)} ms in kernels, ${(totalFlops / 1e9).toFixed(2)} GFLOP, ` +
      `${(totalFlops / wallMs / 1e6).toFixed(1)} GFLOP/s overall\n`,
  );
  return {
    batch,
    wall_ms: round(wallMs, 2),
    kernel_ms: round(kernelMs, 2),
    gflop: round(totalFlops / 1e9, 3),
    rows,
  };
}

/** A set of forward convolution kernels to time. */
interface Variant {
  name: string;
  kernels: KernelConfig[];
}

function wasmKernel(name: string): KernelConfig {
  const config = getKernel(name, 'wasm');
  if (config === undefined)
    throw new MissingKernelError(
      `the wasm backend has no ${name} kernel; is @tensorflow/tfjs-backend-wasm 4.22.0 installed?`,
    );
  return config;
}

function use(variant: Variant): void {
  for (const config of variant.kernels) {
    unregisterKernel(config.kernelName, config.backendName);
    registerKernel(config);
  }
}

/** The Conv2D/FusedConv2D of another engine build in `dir`, falling back to `stock` as the engine's do. */
async function baselineVariant(dir: string, stock: KernelConfig[]): Promise<Variant> {
  const at = (file: string) => pathToFileURL(path.resolve(dir, 'kernels', file)).href;
  const forward = (await import(at('conv2d-forward.js'))) as Record<string, KernelConfig>;
  const backend = (await import(at('wasm-backend.js'))) as {
    rememberStockKernel(config: KernelConfig, engineConfig: KernelConfig): void;
  };
  const kernels = [forward.wasmConv2DConfig, forward.wasmFusedConv2DConfig];
  if (kernels.some((k) => k === undefined)) {
    throw new EvalKernelsOptionError(
      `--baseline '${dir}': its kernels/conv2d-forward.js exports no conv configs`,
    );
  }
  for (const [i, config] of (kernels as KernelConfig[]).entries()) {
    backend.rememberStockKernel(stock[i] as KernelConfig, config);
  }
  return { name: 'baseline', kernels: kernels as KernelConfig[] };
}

interface Case {
  name: string;
  batch: number;
  step: () => Promise<void>;
}

/** Images per CPU-second and per wall-second of one sample: `step` called until `minMs` of wall time passed. */
async function sample(step: () => Promise<void>, batch: number, minMs: number) {
  const { calls, ms, cpu_ms } = await timeCalls(step, minMs);
  return { img_per_cpu_s: (calls * batch * 1000) / cpu_ms, img_per_s: (calls * batch * 1000) / ms };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      batch: { type: 'string', default: '128' },
      runs: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '5' },
      'min-ms': { type: 'string', default: '1500' },
      baseline: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const { integer } = flagParsers(EvalKernelsOptionError);
  const batch = integer('batch', values.batch, 1);
  const runs = integer('runs', values.runs, 1);
  const rounds = integer('rounds', values.rounds, 1);
  const minMs = integer('min-ms', values['min-ms'], 0);
  const out = values.out ?? fileURLToPath(new URL('../results/eval-kernels.json', import.meta.url));
  await import('@tensorflow/tfjs-backend-wasm');
  const stock = [wasmKernel(Conv2D), wasmKernel(FusedConv2D)];
  await initEngine({ backend: 'wasm' });
  const variants: Variant[] = [
    { name: 'engine', kernels: [wasmKernel(Conv2D), wasmKernel(FusedConv2D)] },
    { name: 'xnnpack', kernels: stock },
  ];
  if (values.baseline !== undefined) variants.push(await baselineVariant(values.baseline, stock));

  const model = createCifarResNet({ arch: 'resnet20', shortcut: 'B', seed: 1 });
  const folded = inferenceModel(model).model;
  const predictor = (n: number) => {
    const images = tf.randomUniform([n, 32, 32, 3], -1, 1, 'float32', 1);
    return () => tf.tidy(() => void (folded.predict(images, { batchSize: n }) as tf.Tensor).dataSync());
  };
  const predictBatch = predictor(batch);
  const evalProfile = profile(predictBatch, batch, runs);

  const computer = await createGradientComputer({ model, workers: 0, numClasses: 10, backend: 'wasm' });
  const trainImages = new Float32Array(batch * 32 * 32 * 3).map((_, i) => Math.sin(i * 12.9898) * 0.5);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const predictOne = predictor(1);
  const cases: Case[] = [
    { name: `eval b${batch}`, batch, step: async () => predictBatch() },
    { name: 'eval b1', batch: 1, step: async () => predictOne() },
    {
      name: `train b${batch}`,
      batch,
      step: async () => void (await computer.compute({ images: trainImages, labels, count: batch })),
    },
  ];
  const samples = cases.map(() => variants.map(() => [] as Awaited<ReturnType<typeof sample>>[]));
  // Round 0 warms every variant up (XNNPACK operator creation, first-call allocations) and is dropped.
  for (let round = 0; round <= rounds; round++) {
    for (const [c, testCase] of cases.entries()) {
      for (const [v, variant] of variants.entries()) {
        use(variant);
        const figures = await sample(testCase.step, testCase.batch, round === 0 ? 0 : minMs);
        if (round > 0) samples[c]![v]!.push(figures);
      }
    }
    process.stdout.write(`round ${round}/${rounds}\n`);
  }
  use(variants[0]!);
  const comparison = cases.map((testCase, c) => ({
    case: testCase.name,
    variants: variants.map((variant, v) => {
      const list = samples[c]![v]!;
      const ratios = list.map((s, i) => s.img_per_cpu_s / samples[c]![0]![i]!.img_per_cpu_s);
      return {
        variant: variant.name,
        img_per_cpu_s: round(median(list.map((s) => s.img_per_cpu_s))),
        img_per_s: round(median(list.map((s) => s.img_per_s))),
        /** Median over rounds of this variant's img/CPU-s over the engine's in the same round. */
        vs_engine: round(median(ratios), 3),
      };
    }),
  }));
  printTable(
    [
      'case',
      ...variants.map((v) => `${v.name} img/cpu-s (img/s)`),
      ...variants.slice(1).map((v) => `${v.name}/engine`),
    ],
    comparison.map((row) => [
      row.case,
      ...row.variants.map((v) => `${v.img_per_cpu_s} (${v.img_per_s})`),
      ...row.variants.slice(1).map((v) => `${v.vs_engine.toFixed(3)}`),
    ]),
  );
  await writeAtomically(
    out,
    `${JSON.stringify({ eval_profile: evalProfile, rounds, min_ms: minMs, comparison }, null, 2)}\n`,
  );
  await computer.close();
  folded.dispose();
  model.dispose();
}

await main();
