/**
 * Per-layer timing of basis convolutions (and SVD at the same parameter count) against the dense conv,
 * for every distinct conv shape of CIFAR ResNet-20 and ResNet-18: forward and forward+backward, with the
 * multiply-add ratio beside the measured time ratio. Writes bench/results/layers.json.
 *
 * Timing: the machine is shared (2 cores, several processes), so wall time mostly measures waiting for a
 * core. Each sample is the process CPU time (`process.cpuUsage`) of one call; variants of a shape are
 * measured round-robin and the median is kept, so ratios within a shape compare like with like.
 * Wall-clock medians are recorded too. Forward+backward is the layer's vector-Jacobian product for a fixed
 * output gradient (no loss ops, which cost the same for every variant and so hide part of the speed-up; no
 * input gradient for the 3-channel stems, as in training), and
 * nothing is read back: the wasm and cpu backends are synchronous, their work is done when a kernel returns.
 * Environment: BENCH_REPS (rounds, default 7), BENCH_FILTER (substring of a shape label), BENCH_BATCH_R20 (batch
 * of the ResNet-20 shapes, default 32; 64 is what each of two gradient workers computes in a batch-128 step).
 */
import { fileURLToPath } from 'node:url';
import { BasisConv2D, basisCost, factoredPays } from '@decompose/basis';
import { type ConvShape, convCost, type Layer, withConv } from '@decompose/core';
import { sameConvShape } from '@decompose/core/testing';
import { type EngineInfo, initEngine } from '@decompose/engine';
import { buildSvdLayers, rankForParams, svdCost } from '@decompose/svd';
import * as tf from '@tensorflow/tfjs-core';
import { layers } from '@tensorflow/tfjs-layers';
import { type KernelTime, labelByShapes, startKernelTimer } from './kernel-timer.js';
import { printTable, writeAtomically } from './output.js';
import { measure, median, type Samples } from './samples.js';

const RATIOS = [0.25, 0.5, 0.75] as const;
const BATCH = { resnet20: Number(process.env.BENCH_BATCH_R20 ?? 32), resnet18: 8 } as const;
const REPS = Number(process.env.BENCH_REPS ?? 7);
const FILTER = process.env.BENCH_FILTER ?? '';

interface ShapeCase {
  network: keyof typeof BATCH;
  label: string;
  shape: ConvShape;
  /**
   * Whether backward computes the input gradient: not for a stem (3 input channels, the image), whose input
   * gradient training never computes (tfjs differentiates only towards the trained weights).
   */
  inputGradient: boolean;
}

/** Distinct conv shapes: ResNet-20 (option-A shortcuts, no 1×1 convs) and ResNet-18 (1×1 projections). */
const CASES: ShapeCase[] = [
  ...(
    [
      [3, 16, 3, 1, 32],
      [16, 16, 3, 1, 32],
      [16, 32, 3, 2, 32],
      [32, 32, 3, 1, 16],
      [32, 64, 3, 2, 16],
      [64, 64, 3, 1, 8],
    ] as const
  ).map(([i, o, k, s, size]) => ({ network: 'resnet20' as const, shape: sameConvShape(i, o, k, s, size) })),
  ...(
    [
      [3, 64, 3, 1, 32],
      [64, 64, 3, 1, 32],
      [64, 128, 3, 2, 32],
      [128, 128, 3, 1, 16],
      [128, 256, 3, 2, 16],
      [256, 256, 3, 1, 8],
      [256, 512, 3, 2, 8],
      [512, 512, 3, 1, 4],
      [64, 128, 1, 2, 32],
      [128, 256, 1, 2, 16],
      [256, 512, 1, 2, 8],
    ] as const
  ).map(([i, o, k, s, size]) => ({ network: 'resnet18' as const, shape: sameConvShape(i, o, k, s, size) })),
].map((c) => ({ ...c, label: `${c.network} ${labelOf(c.shape)}`, inputGradient: c.shape.inChannels !== 3 }));

function labelOf(s: ConvShape): string {
  return `${s.inChannels}→${s.outChannels} k${s.kernelSize[0]} s${s.strides[0]} @${s.inputSize[0]}`;
}

interface Variant {
  name: string;
  params: number;
  forwardMacs: number;
  make: () => Layer[];
}

function variantsOf(shape: ConvShape, batch: number): Variant[] {
  const convArgs = {
    kernelSize: [...shape.kernelSize] as [number, number],
    strides: [...shape.strides] as [number, number],
    padding: shape.padding,
    useBias: shape.useBias,
  };
  const dense = convCost(shape);
  const variants: Variant[] = [
    {
      name: 'dense',
      ...dense,
      make: () => [layers.conv2d({ ...convArgs, filters: shape.outChannels })],
    },
  ];
  for (const ratio of RATIOS) {
    const cost = basisCost(shape, { ratio, form: 'shrunk' }, batch);
    const m = Math.max(1, Math.round(ratio * shape.outChannels));
    const positions = batch * shape.outputSize[0] * shape.outputSize[1];
    const [kh, kw] = shape.kernelSize;
    const path = factoredPays(kh * kw, shape.inChannels, shape.outChannels, m, positions) ? '' : ' (folded)';
    const saving = cost.params < dense.params ? '' : ' (≥ dense params)';
    variants.push({
      name: `basis ${ratio}${path}${saving}`,
      ...cost,
      make: () => [new BasisConv2D({ ...convArgs, filters: shape.outChannels, basisSize: m, seed: 1 })],
    });
  }
  // The basis convolution alone (no 1×1 step) at the smallest ratio: how much of the basis layer's time is
  // the narrow convolution, and how much the combination step.
  const m = Math.max(1, Math.round(RATIOS[0] * shape.outChannels));
  variants.push({
    name: `conv to m=${m} only`,
    ...convCost(withConv(shape, { outChannels: m })),
    make: () => [layers.conv2d({ ...convArgs, filters: m })],
  });
  for (const ratio of RATIOS) {
    const params = basisCost(shape, { ratio, form: 'shrunk' }).params;
    const rank = rankForParams(shape, params, 'weight');
    variants.push({
      name: `svd ${ratio}`,
      ...svdCost(shape, 'weight', rank),
      make: () => buildSvdLayers(shape, 'weight', rank, { name: `svd_${ratio}` }),
    });
  }
  return variants;
}

interface Runner {
  forward: () => void;
  forwardBackward: () => void;
  dispose: () => void;
}

function runnerFor(variant: Variant, shape: ConvShape, batch: number, inputGradient: boolean): Runner {
  const stack = variant.make();
  const [h, w] = shape.inputSize;
  const x = tf.variable(tf.randomNormal([batch, h, w, shape.inChannels], 0, 1, 'float32', 1));
  let inputShape: (number | null)[] = [null, h, w, shape.inChannels];
  for (const layer of stack) {
    layer.build(inputShape);
    inputShape = layer.computeOutputShape(inputShape) as (number | null)[];
  }
  const dy = tf.randomNormal([batch, ...(inputShape.slice(1) as number[])], 0, 1, 'float32', 2);
  const apply = () => stack.reduce<tf.Tensor>((t, layer) => layer.apply(t) as tf.Tensor, x);
  const weights = stack.flatMap((l) => l.trainableWeights.map((v) => v.read() as tf.Variable));
  const variables = inputGradient ? [x, ...weights] : weights;
  return {
    forward: () =>
      tf.tidy(() => {
        apply();
      }),
    forwardBackward: () =>
      tf.tidy(() => {
        tf.engine().gradients(apply, variables, dy);
      }),
    dispose: () => {
      for (const weight of stack.flatMap((l) => l.weights)) weight.dispose();
      tf.dispose([x, dy]);
    },
  };
}

type Phase = 'forward' | 'forwardBackward';

/** Median CPU and wall ms per variant for one shape and phase, measured round-robin. */
function timeShape(c: ShapeCase, variants: Variant[], phase: Phase): { cpu: number; wall: number }[] {
  const batch = BATCH[c.network];
  const runners = variants.map((v) => runnerFor(v, c.shape, batch, c.inputGradient));
  const samples: Samples[] = runners.map(() => ({ cpu: [], wall: [] }));
  try {
    for (const r of runners) r[phase]();
    for (let round = 0; round < REPS; round++) {
      runners.forEach((r, i) => {
        measure(r[phase], samples[i]!);
      });
    }
  } finally {
    for (const r of runners) r.dispose();
  }
  return samples.map((s) => ({ cpu: median(s.cpu), wall: median(s.wall) }));
}

/** Whether forward+backward of a conv runs on the active backend (the wasm conv-gradient kernels). */
function gradientsWork(): string | null {
  try {
    const tiny = sameConvShape(4, 8, 3, 1, 4);
    const runner = runnerFor(variantsOf(tiny, 1)[1]!, tiny, 1, true);
    runner.forwardBackward();
    runner.dispose();
    return null;
  } catch (error) {
    return error instanceof Error ? error.message.split('\n')[0]! : String(error);
  }
}

/** Where a variant's forward+backward spends its CPU time: per kernel and shapes, ms per call. */
interface VariantProfile {
  variant: string;
  kernelMs: number;
  kernels: { kernel: string; shapes: string; ms: number; calls: number }[];
}

/**
 * Kernel profiles of one shape's forward+backward for `variants`, after the timed rounds: `passes` round-robin
 * passes of `runs` calls per variant, each variant's quietest pass kept (the machine is shared: one pass of 5
 * calls saw the same kernel at 0.5 and 1.4 ms in consecutive variants). What a missed target's time goes to, set
 * beside the dense layer's.
 */
function profileShape(
  c: ShapeCase,
  variants: Variant[],
  backend: string,
  runs = 5,
  passes = 3,
): VariantProfile[] {
  const runners = variants.map((v) => runnerFor(v, c.shape, BATCH[c.network], c.inputGradient));
  const best: (VariantProfile | undefined)[] = variants.map(() => undefined);
  try {
    for (const r of runners) r.forwardBackward();
    for (let pass = 0; pass < passes; pass++) {
      runners.forEach((runner, i) => {
        const stop = startKernelTimer(backend, labelByShapes);
        let times: KernelTime[] = [];
        try {
          for (let call = 0; call < runs; call++) runner.forwardBackward();
        } finally {
          times = stop();
        }
        const kernels = times.map((t) => {
          const [kernel = '', shapes = ''] = t.kernel.split('\t');
          return { kernel, shapes, ms: Number((t.cpu_ms / runs).toFixed(3)), calls: t.calls / runs };
        });
        const kernelMs = Number(kernels.reduce((sum, k) => sum + k.ms, 0).toFixed(3));
        const kept = best[i];
        if (kept === undefined || kernelMs < kept.kernelMs)
          best[i] = { variant: variants[i]!.name, kernelMs, kernels };
      });
    }
  } finally {
    for (const r of runners) r.dispose();
  }
  return best.filter((p): p is VariantProfile => p !== undefined);
}

interface Row {
  network: string;
  shape: string;
  batch: number;
  variant: string;
  params: number;
  forwardMacs: number;
  /** Dense MACs / variant MACs (the same for forward and forward+backward: both scale alike). */
  macRatio: number;
  forwardMs: number;
  forwardWallMs: number;
  forwardSpeedup: number;
  forwardBackwardMs: number;
  forwardBackwardWallMs: number;
  forwardBackwardSpeedup: number;
  /** forwardBackwardSpeedup / macRatio; the target is ≥ 0.7 where macRatio ≥ 2. */
  efficiency: number;
}

async function main(): Promise<void> {
  const engine: EngineInfo = await initEngine();
  const backends: Record<Phase, string> = { forward: engine.backend, forwardBackward: engine.backend };
  const gradientProblem = gradientsWork();
  const notes: string[] = [
    'Times are medians of per-call process CPU time (process.cpuUsage), variants of a shape measured round-robin; wall medians beside them. The machine is shared, so compare ratios within a shape.',
    `Batch: ${BATCH.resnet20} for ResNet-20 shapes, ${BATCH.resnet18} for ResNet-18 shapes. Forward+backward computes the gradients of every weight and of the input (not for the 3-channel stems: their input is the image, whose gradient training never computes) for a fixed output gradient (no loss ops); nothing is read back (synchronous backends).`,
    'basis: BasisConv2D in its default (auto) execution; "(folded)" marks calls where conv(x, B) + the 1×1 step would take more multiply-adds than forming W = A·B and running one conv, which the layer then does (MACs shown are the dense ones).',
    '"conv to m only": the basis layer without its 1×1 step (a Conv2D with m = 0.25·C_out filters): its time against the basis 0.25 row splits that row into the narrow convolution and the combination step.',
    'SVD: rank-r weight SVD (k×k conv to r channels, then 1×1) with the largest r whose parameters fit the basis layer of the same ratio.',
    'target.profiles: for each missed layer, the kernels of one forward+backward call (CPU ms per call: of 3 round-robin passes of 5 calls, the quietest of each variant) of the dense layer, the missed basis variant and its narrow convolution alone.',
  ];
  const cases = CASES.filter((c) => c.label.includes(FILTER));
  const variantsByCase = cases.map((c) => variantsOf(c.shape, BATCH[c.network]));
  const forward = cases.map((c, i) => {
    process.stdout.write(`forward ${c.label}\n`);
    return timeShape(c, variantsByCase[i]!, 'forward');
  });
  if (gradientProblem !== null) {
    notes.push(`forward+backward ran on cpu: on ${engine.backend} it failed with "${gradientProblem}"`);
    backends.forwardBackward = (await initEngine({ backend: 'cpu' })).backend;
  }
  const backward = cases.map((c, i) => {
    process.stdout.write(`forward+backward ${c.label}\n`);
    return timeShape(c, variantsByCase[i]!, 'forwardBackward');
  });

  const rows: Row[] = cases.flatMap((c, i) => {
    const variants = variantsByCase[i]!;
    const [denseF, denseB] = [forward[i]![0]!, backward[i]![0]!];
    return variants.map((v, j) => {
      const f = forward[i]![j]!;
      const b = backward[i]![j]!;
      const macRatio = variants[0]!.forwardMacs / v.forwardMacs;
      return {
        network: c.network,
        shape: labelOf(c.shape),
        batch: BATCH[c.network],
        variant: v.name,
        params: v.params,
        forwardMacs: v.forwardMacs,
        macRatio,
        forwardMs: f.cpu,
        forwardWallMs: f.wall,
        forwardSpeedup: denseF.cpu / f.cpu,
        forwardBackwardMs: b.cpu,
        forwardBackwardWallMs: b.wall,
        forwardBackwardSpeedup: denseB.cpu / b.cpu,
        efficiency: denseB.cpu / b.cpu / macRatio,
      };
    });
  });
  printRows(rows);
  const targeted = rows.filter((r) => r.variant.startsWith('basis') && r.macRatio >= 2);
  const missed = targeted.filter((r) => r.efficiency < 0.7);
  // Each miss beside its dense layer and its narrow convolution alone ("conv to m only").
  const profiles = missed.map((r) => {
    const i = cases.findIndex((c) => c.network === r.network && labelOf(c.shape) === r.shape);
    const variants = variantsByCase[i]!.filter(
      (v, j) => j === 0 || v.name === r.variant || v.name.startsWith('conv to m'),
    );
    return {
      layer: `${r.network} ${r.shape}`,
      variants: profileShape(cases[i]!, variants, backends.forwardBackward),
    };
  });
  const result = {
    date: new Date().toISOString(),
    engine: { ...engine, backends },
    reps: REPS,
    notes,
    target: {
      rule: 'basis layers whose MACs drop ≥ 2×: measured forward+backward speed-up ≥ 0.7 × MAC ratio',
      layers: targeted.length,
      met: targeted.length - missed.length,
      missed: missed.map((r) => `${r.network} ${r.shape} ${r.variant}: ${r.efficiency.toFixed(2)}`),
      profiles,
    },
    rows,
  };
  printProfiles(profiles);
  const file = fileURLToPath(new URL('../results/layers.json', import.meta.url));
  await writeAtomically(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    `\nbackends: forward ${backends.forward}, forward+backward ${backends.forwardBackward} (${engine.threads} thread(s))\n` +
      `target met for ${result.target.met}/${result.target.layers} basis layers with MAC ratio ≥ 2\n${notes.join('\n')}\nwrote ${file}\n`,
  );
}

/** The kernels of each missed layer's variants, largest first (ms per forward+backward call). */
function printProfiles(profiles: { layer: string; variants: VariantProfile[] }[]): void {
  if (profiles.length === 0) return;
  process.stdout.write(
    '\nkernel profiles of the missed layers (ms per forward+backward call, top 6 kernels):\n',
  );
  printTable(
    ['layer', 'variant', 'kernels ms', 'kernel', 'shapes', 'ms'],
    profiles.flatMap((p) =>
      p.variants.flatMap((v) =>
        v.kernels
          .slice(0, 6)
          .map((k, i) => [
            i === 0 ? p.layer : '',
            i === 0 ? v.variant : '',
            i === 0 ? v.kernelMs.toFixed(2) : '',
            k.kernel,
            k.shapes,
            k.ms.toFixed(3),
          ]),
      ),
    ),
  );
}

function printRows(rows: Row[]): void {
  const header = ['shape', 'batch', 'variant', 'params', 'MAC×', 'fwd ms', 'fwd×', 'f+b ms', 'f+b×', 'eff'];
  const body = rows.map((r) => [
    `${r.network} ${r.shape}`,
    String(r.batch),
    r.variant,
    String(r.params),
    r.macRatio.toFixed(2),
    r.forwardMs.toFixed(1),
    r.forwardSpeedup.toFixed(2),
    r.forwardBackwardMs.toFixed(1),
    r.forwardBackwardSpeedup.toFixed(2),
    r.efficiency.toFixed(2),
  ]);
  printTable(header, body);
}

await main();
