import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGradientComputer, initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { MOBILENET_STAGES, mobileNetV2 } from './mobilenet-model.js';
import { printTable, writeAtomically } from './output.js';

// A MobileNetV2-style train step on the wasm backend with the engine's kernels: where its time goes, by kind of
// convolution. The question: are the depthwise gradients (DepthwiseConv2dNativeBackpropInput/Filter, which the
// engine supplies) small beside the pointwise (1×1) convolutions, as they are in MACs? Every kernel is wrapped
// with a timer that charges its CPU time to a category read from its inputs (a 1×1 filter is pointwise).
// Usage: node bench/dist/mobilenet.js [--batch 32] [--size 32] [--steps 5]. Writes bench/results/mobilenet.json.

class MobileNetOptionError extends BenchError {
  override readonly name = 'MobileNetOptionError';
}

const NUM_CLASSES = 10;

type Category =
  | 'depthwise gradients'
  | 'depthwise forward'
  | 'pointwise gradients'
  | 'pointwise forward'
  | 'stem conv (3×3, fwd + grads)'
  | 'other';

const is1x1 = (shape: readonly number[] | undefined) =>
  shape !== undefined && shape[0] === 1 && shape[1] === 1;

/** The category of one kernel call, from its name and (for convolutions) its filter's shape. */
function categoryOf(
  kernel: string,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap | undefined,
): Category {
  if (kernel.startsWith('DepthwiseConv2dNativeBackprop')) return 'depthwise gradients';
  if (kernel === 'DepthwiseConv2dNative' || kernel === 'FusedDepthwiseConv2D') return 'depthwise forward';
  if (kernel === 'Conv2D' || kernel === 'FusedConv2D') {
    return is1x1(inputs.filter?.shape) ? 'pointwise forward' : 'stem conv (3×3, fwd + grads)';
  }
  if (kernel === 'Conv2DBackpropInput') {
    return is1x1(inputs.filter?.shape) ? 'pointwise gradients' : 'stem conv (3×3, fwd + grads)';
  }
  if (kernel === 'Conv2DBackpropFilter') {
    const filterShape = (attrs as { filterShape?: number[] } | undefined)?.filterShape;
    return is1x1(filterShape) ? 'pointwise gradients' : 'stem conv (3×3, fwd + grads)';
  }
  return 'other';
}

interface Totals {
  cpuMs: number;
  wallMs: number;
  calls: number;
}

/**
 * Wraps every wasm kernel so that its CPU and wall time go to its category and to its name (outermost calls only,
 * so a kernel built on others is charged their time). Returns the function that unwraps them.
 */
function startCategoryTimer(byCategory: Map<string, Totals>, byKernel: Map<string, Totals>): () => void {
  const originals = tf.getKernelsForBackend('wasm');
  let depth = 0;
  const add = (map: Map<string, Totals>, key: string, cpuMs: number, wallMs: number) => {
    const entry = map.get(key) ?? { cpuMs: 0, wallMs: 0, calls: 0 };
    entry.cpuMs += cpuMs;
    entry.wallMs += wallMs;
    entry.calls++;
    map.set(key, entry);
  };
  const replace = (configs: tf.KernelConfig[]) => {
    for (const config of configs) {
      tf.unregisterKernel(config.kernelName, 'wasm');
      tf.registerKernel(config);
    }
  };
  replace(
    originals.map((config) => ({
      ...config,
      kernelFunc: (args: Parameters<tf.KernelFunc>[0]) => {
        depth++;
        const start = performance.now();
        const cpuStart = process.cpuUsage();
        try {
          return config.kernelFunc(args);
        } finally {
          depth--;
          if (depth === 0) {
            const cpu = process.cpuUsage(cpuStart);
            const cpuMs = (cpu.user + cpu.system) / 1000;
            const wallMs = performance.now() - start;
            add(byCategory, categoryOf(config.kernelName, args.inputs, args.attrs), cpuMs, wallMs);
            add(byKernel, config.kernelName, cpuMs, wallMs);
          }
        }
      },
    })),
  );
  return () => replace(originals);
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      batch: { type: 'string', default: '32' },
      size: { type: 'string', default: '32' },
      steps: { type: 'string', default: '5' },
      out: { type: 'string' },
    },
  });
  const { integer } = flagParsers(MobileNetOptionError);
  const batch = integer('batch', values.batch, 1);
  const size = integer('size', values.size, 8);
  const steps = integer('steps', values.steps, 1);
  const out = values.out ?? fileURLToPath(new URL('../results/mobilenet.json', import.meta.url));

  const engine = await initEngine({ backend: 'wasm' });
  const model = mobileNetV2(size, NUM_CLASSES);
  const images = new Float32Array(batch * size * size * 3);
  for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 12.9898) * 0.5;
  const labels = Int32Array.from({ length: batch }, (_, i) => i % NUM_CLASSES);
  const data = { images, labels, count: batch };
  const computer = await createGradientComputer({ model, workers: 0, numClasses: NUM_CLASSES });
  try {
    await computer.compute(data); // warm-up: first-call allocations, XNNPACK operator creation
    // Total step time without timers, then the same steps with every kernel timed.
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < steps; i++) await computer.compute(data);
    const stepMs = (performance.now() - start) / steps;
    const cpu = process.cpuUsage(cpuStart);
    const stepCpuMs = (cpu.user + cpu.system) / 1000 / steps;

    const byCategory = new Map<string, Totals>();
    const byKernel = new Map<string, Totals>();
    const stop = startCategoryTimer(byCategory, byKernel);
    try {
      for (let i = 0; i < steps; i++) await computer.compute(data);
    } finally {
      stop();
    }
    const kernelCpuMs = [...byCategory.values()].reduce((a, b) => a + b.cpuMs, 0) / steps;
    const perStep = (t: Totals) => ({
      cpu_ms: round(t.cpuMs / steps),
      wall_ms: round(t.wallMs / steps),
      calls: t.calls / steps,
      share_of_kernel_time: round(t.cpuMs / steps / kernelCpuMs, 3),
    });
    const categories = Object.fromEntries(
      [...byCategory.entries()].sort((a, b) => b[1].cpuMs - a[1].cpuMs).map(([k, t]) => [k, perStep(t)]),
    );
    const kernels = [...byKernel.entries()]
      .sort((a, b) => b[1].cpuMs - a[1].cpuMs)
      .slice(0, 15)
      .map(([kernel, t]) => ({ kernel, ...perStep(t) }));
    const cpuOf = (category: Category) => byCategory.get(category)?.cpuMs ?? 0;
    // Inference in this thread (`predict`, BatchNorm as is): a batch, and one image (the latency an app sees).
    const evalImagesPerSecond = (count: number, repeats: number) => {
      const input = tf.tensor4d(images.subarray(0, count * size * size * 3), [count, size, size, 3]);
      try {
        tf.dispose(model.predict(input, { batchSize: count }));
        const started = performance.now();
        for (let i = 0; i < repeats; i++) {
          const logits = model.predict(input, { batchSize: count }) as tf.Tensor;
          logits.dataSync();
          logits.dispose();
        }
        return (count * repeats * 1000) / (performance.now() - started);
      } finally {
        input.dispose();
      }
    };
    const evalBatch = round(evalImagesPerSecond(batch, steps));
    const evalSingle = round(evalImagesPerSecond(1, 10 * steps));
    const pointwise = cpuOf('pointwise forward') + cpuOf('pointwise gradients');
    const result = {
      date: new Date().toISOString(),
      engine: { backend: engine.backend, threads: engine.threads },
      model: {
        name: 'MobileNetV2-style (stem 3×3/32, inverted residuals t=6 up to 96 channels, ReLU6, BatchNorm)',
        input: [size, size, 3],
        stages: MOBILENET_STAGES.map(([t, c, n, s]) => ({ t, c, n, s })),
        params: model.countParams(),
        layers: model.layers.length,
      },
      batch,
      steps,
      train_step_ms: round(stepMs),
      train_step_cpu_ms: round(stepCpuMs),
      train_img_per_s: round((batch * 1000) / stepMs),
      eval_img_per_s: evalBatch,
      eval_batch1_ms_per_image: round(1000 / evalSingle),
      timed_kernel_cpu_ms_per_step: round(kernelCpuMs),
      depthwise_gradients_vs_pointwise: round(cpuOf('depthwise gradients') / pointwise, 3),
      categories,
      top_kernels: kernels,
    };
    await writeAtomically(out, `${JSON.stringify(result, null, 2)}\n`);
    printTable(
      ['category', 'ms/step', 'share', 'calls/step'],
      Object.entries(categories).map(([k, v]) => [
        k,
        v.cpu_ms.toFixed(1),
        `${(100 * v.share_of_kernel_time).toFixed(1)}%`,
        String(v.calls),
      ]),
    );
    process.stdout.write(
      `\ntrain step ${result.train_step_ms} ms (CPU ${result.train_step_cpu_ms} ms), batch ${batch} at ${size}×${size}; ` +
        `depthwise gradients / pointwise convs = ${result.depthwise_gradients_vs_pointwise}; ` +
        `eval ${evalBatch} img/s at batch ${batch}, ${result.eval_batch1_ms_per_image} ms per image at batch 1\nwrote ${out}\n`,
    );
  } finally {
    await computer.close();
    model.dispose();
  }
}

try {
  await main();
} catch (error) {
  if (!(error instanceof BenchError)) throw error;
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exitCode = 2;
}
