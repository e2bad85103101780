/**
 * Whole-network timing of basis convolutions: CIFAR ResNet-20 train steps (forward, softmax cross-entropy and
 * the gradients of every trainable weight) and eval (inference) images per second at batch 128, for the dense
 * network and two basis rewrites, with each rewrite's multiply-add ratio beside its measured speed-up.
 * Writes bench/results/basis-network.json.
 *
 * Timing as in layers.ts: the machine is shared, so each sample is the process CPU time of one call; the
 * variants are measured round-robin in one process and the median is kept, so their ratios compare like
 * with like. Sharing only ever adds CPU time (caches, memory bandwidth), so ratios of the fastest samples
 * are recorded too: when the two disagree, the machine was busy. Environment: BENCH_REPS (rounds, default 5), BENCH_BATCH (default 128).
 */
import { fileURLToPath } from 'node:url';
import { basisStrategy } from '@decompose/basis';
import { applyStrategy, costTable } from '@decompose/core';
import {
  accelerateBatchNormTraining,
  type EngineInfo,
  initEngine,
  skipInputGradients,
  softmaxCrossEntropy,
} from '@decompose/engine';
import { createCifarResNet, listConvLayers } from '@decompose/resnet';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type KernelTime, startKernelTimer } from './kernel-timer.js';
import { printTable, writeAtomically } from './output.js';
import { measure, median, type Samples } from './samples.js';

const REPS = Number(process.env.BENCH_REPS ?? 5);
const BATCH = Number(process.env.BENCH_BATCH ?? 128);
const NUM_CLASSES = 10;
const RATIO = 0.5;

interface NetworkVariant {
  name: string;
  /** Which 3×3 convolutions become basis convolutions (none for the dense network). */
  rewrites: (convName: string) => boolean;
}

const VARIANTS: NetworkVariant[] = [
  { name: 'dense', rewrites: () => false },
  { name: `basis ${RATIO}, every 3×3 conv but the stem`, rewrites: (name) => name !== 'stem.conv' },
  {
    name: `basis ${RATIO}, stages 2–3`,
    rewrites: (name) => name.startsWith('stage2.') || name.startsWith('stage3.'),
  },
];

interface Subject {
  variant: NetworkVariant;
  model: LayersModel;
  rewritten: string[];
  params: number;
  forwardMacs: number;
  trainStep: () => void;
  evaluate: () => void;
}

function subjectFor(variant: NetworkVariant, images: tf.Tensor4D, labels: tf.Tensor1D): Subject {
  const dense = createCifarResNet({ arch: 'resnet20', seed: 1 });
  const rewritten = listConvLayers(dense)
    .filter((c) => c.kernelSize[0] === 3 && c.kernelSize[1] === 3 && variant.rewrites(c.name))
    .map((c) => c.name);
  let model = dense;
  if (rewritten.length > 0) {
    model = applyStrategy(dense, basisStrategy, {
      layers: rewritten,
      options: { ratio: RATIO },
      seed: 1,
    }).model;
    dense.dispose();
  }
  // As the engine's training step does: BatchNorm trains through the engine's fused op, the stem skips the
  // images' gradient.
  accelerateBatchNormTraining(model);
  skipInputGradients(model);
  const { total } = costTable(model, { strategies: [basisStrategy] });
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  return {
    variant,
    model,
    rewritten,
    params: total.params,
    forwardMacs: total.forwardMacs,
    // The wasm and cpu backends are synchronous: when a kernel returns its work is done, so nothing is read back.
    trainStep: () =>
      tf.tidy(() => {
        tf.variableGrads(
          () =>
            softmaxCrossEntropy(
              model.apply(images, { training: true }) as tf.Tensor2D,
              labels,
              NUM_CLASSES,
              0,
            ),
          variables,
        );
      }),
    evaluate: () =>
      tf.tidy(() => {
        model.predict(images, { batchSize: BATCH });
      }),
  };
}

interface NetworkRecord {
  variant: string;
  rewrittenConvs: string[];
  batch: number;
  params: number;
  /** Per-image forward multiply-adds of the whole network (core's costTable). */
  forwardMacs: number;
  /** Dense network's MACs / this network's MACs. */
  macRatio: number;
  trainStepCpuMs: number;
  trainStepWallMs: number;
  trainImgPerCpuS: number;
  /** Dense train-step CPU time / this one's (medians). */
  trainSpeedup: number;
  /** The same from each variant's fastest sample. */
  trainSpeedupOfFastest: number;
  evalCpuMs: number;
  evalWallMs: number;
  evalImgPerCpuS: number;
  evalSpeedup: number;
  evalSpeedupOfFastest: number;
  /** trainSpeedup / macRatio. */
  trainEfficiency: number;
  /** The kernels of one train step, by CPU time (a separate, untimed pass). */
  topTrainKernels: KernelTime[];
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

async function main(): Promise<void> {
  const engine: EngineInfo = await initEngine();
  const images = tf.randomUniform([BATCH, 32, 32, 3], -1, 1, 'float32', 7) as tf.Tensor4D;
  const labels = tf.tensor1d(
    Array.from({ length: BATCH }, (_, i) => (i * 7) % NUM_CLASSES),
    'int32',
  );
  const subjects = VARIANTS.map((v) => subjectFor(v, images, labels));
  const train: Samples[] = subjects.map(() => ({ cpu: [], wall: [] }));
  const evaluation: Samples[] = subjects.map(() => ({ cpu: [], wall: [] }));
  for (const s of subjects) {
    s.trainStep(); // warm-up: first-call allocations, XNNPACK operator creation
    s.evaluate();
  }
  for (let rep = 0; rep < REPS; rep++) {
    process.stdout.write(`round ${rep + 1}/${REPS}\n`);
    subjects.forEach((s, i) => {
      measure(s.trainStep, train[i]!);
    });
    subjects.forEach((s, i) => {
      measure(s.evaluate, evaluation[i]!);
    });
  }
  const kernels = subjects.map((s) => {
    const stop = startKernelTimer(engine.backend);
    let times: KernelTime[] = [];
    try {
      s.trainStep();
    } finally {
      times = stop();
    }
    return times;
  });

  const [dense] = subjects;
  const denseTrain = median(train[0]!.cpu);
  const denseEval = median(evaluation[0]!.cpu);
  const fastest = (samples: Samples) => Math.min(...samples.cpu);
  const records: NetworkRecord[] = subjects.map((s, i) => {
    const trainCpu = median(train[i]!.cpu);
    const evalCpu = median(evaluation[i]!.cpu);
    const macRatio = dense!.forwardMacs / s.forwardMacs;
    return {
      variant: s.variant.name,
      rewrittenConvs: s.rewritten,
      batch: BATCH,
      params: s.params,
      forwardMacs: s.forwardMacs,
      macRatio: round(macRatio, 3),
      trainStepCpuMs: round(trainCpu, 1),
      trainStepWallMs: round(median(train[i]!.wall), 1),
      trainImgPerCpuS: round((BATCH * 1000) / trainCpu, 1),
      trainSpeedup: round(denseTrain / trainCpu, 3),
      trainSpeedupOfFastest: round(fastest(train[0]!) / fastest(train[i]!), 3),
      evalCpuMs: round(evalCpu, 1),
      evalWallMs: round(median(evaluation[i]!.wall), 1),
      evalImgPerCpuS: round((BATCH * 1000) / evalCpu, 1),
      evalSpeedup: round(denseEval / evalCpu, 3),
      evalSpeedupOfFastest: round(fastest(evaluation[0]!) / fastest(evaluation[i]!), 3),
      trainEfficiency: round(denseTrain / trainCpu / macRatio, 3),
      topTrainKernels: kernels[i]!.slice(0, 10).map((k) => ({
        ...k,
        ms: round(k.ms),
        cpu_ms: round(k.cpu_ms),
      })),
    };
  });
  for (const s of subjects) s.model.dispose();
  tf.dispose([images, labels]);

  printRecords(records);
  const file = fileURLToPath(new URL('../results/basis-network.json', import.meta.url));
  await writeAtomically(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        model: 'createCifarResNet resnet20 (option-A shortcuts), basis layers fitted to its initial weights',
        engine,
        reps: REPS,
        notes: [
          'Medians of per-call process CPU time (process.cpuUsage); variants measured round-robin in one process. The machine is shared, so compare ratios, not absolute rates.',
          'Train step: forward in training mode, softmax cross-entropy on random images and labels, gradients of every trainable weight (no optimizer update). Eval: model.predict.',
          'macRatio: forward multiply-adds of the dense network over the variant (every layer with weights, from core costTable; backward scales alike).',
        ],
        records,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`wrote ${file}\n`);
}

function printRecords(records: NetworkRecord[]): void {
  const header = [
    'variant',
    'convs',
    'MAC×',
    'train img/cpu-s',
    'train×',
    '(fastest)',
    'eval img/cpu-s',
    'eval×',
    '(fastest)',
    'eff',
  ];
  const body = records.map((r) => [
    r.variant,
    String(r.rewrittenConvs.length),
    r.macRatio.toFixed(2),
    r.trainImgPerCpuS.toFixed(1),
    r.trainSpeedup.toFixed(2),
    r.trainSpeedupOfFastest.toFixed(2),
    r.evalImgPerCpuS.toFixed(1),
    r.evalSpeedup.toFixed(2),
    r.evalSpeedupOfFastest.toFixed(2),
    r.trainEfficiency.toFixed(2),
  ]);
  printTable(header, body);
  for (const r of records) {
    const top = r.topTrainKernels
      .slice(0, 6)
      .map((k) => `${k.kernel} ${k.cpu_ms.toFixed(0)}`)
      .join(', ');
    process.stdout.write(`  ${r.variant}: train-step kernels (cpu ms) ${top}\n`);
  }
}

await main();
