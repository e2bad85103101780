/**
 * The eval path against the trained graph: CIFAR ResNet-20 inference at batch 128 on this thread, for the dense
 * network, basis 0.5 and SVD 0.5 (every 3×3 convolution but the stem), each run as trained (Conv2D or basis
 * layer → BatchNormalization → ReLU as separate layers) and through core's `inferenceModel` (BatchNorm folded,
 * activations fused), alternating A B A B in one process. Writes bench/results/eval-path.json.
 *
 * The machine is shared: each sample is one call's process CPU and wall time, the median is kept, and the ratio
 * of the fastest samples is recorded too (sharing only adds time). Environment: BENCH_REPS (rounds, default 7),
 * BENCH_BATCH (default 128), DECOMPOSE_BACKEND (default wasm).
 */
import { fileURLToPath } from 'node:url';
import { basisStrategy } from '@decompose/basis';
import { applyStrategy, type DecompositionStrategy, inferenceModel } from '@decompose/core';
import { type BackendName, initEngine } from '@decompose/engine';
import { createCifarResNet, listConvLayers } from '@decompose/resnet';
import { svdStrategy } from '@decompose/svd';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { printTable, writeAtomically } from './output.js';
import { measure, median, type Samples } from './samples.js';

const REPS = Number(process.env.BENCH_REPS ?? 7);
const BATCH = Number(process.env.BENCH_BATCH ?? 128);

interface Variant {
  name: string;
  strategy: DecompositionStrategy | null;
}

const VARIANTS: Variant[] = [
  { name: 'dense', strategy: null },
  { name: 'basis 0.5, every 3×3 but the stem', strategy: basisStrategy as DecompositionStrategy },
  { name: 'svd 0.5, every 3×3 but the stem', strategy: svdStrategy as DecompositionStrategy },
];

interface Subject {
  variant: Variant;
  trained: LayersModel;
  inference: LayersModel;
  folded: number;
  unfolded: number;
}

function subjectFor(variant: Variant): Subject {
  const dense = createCifarResNet({ arch: 'resnet20', seed: 1 });
  let trained = dense;
  if (variant.strategy !== null) {
    const layers = listConvLayers(dense)
      .filter((c) => c.kernelSize[0] === 3 && c.kernelSize[1] === 3 && c.name !== 'stem.conv')
      .map((c) => c.name);
    trained = applyStrategy(dense, variant.strategy, { layers, options: { ratio: 0.5 }, seed: 1 }).model;
    dense.dispose();
  }
  const { model: inference, folded, unfolded } = inferenceModel(trained);
  return {
    variant,
    trained,
    inference,
    folded: folded.filter((f) => f.batchNorm !== null).length,
    unfolded: unfolded.length,
  };
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

async function main(): Promise<void> {
  const backend = (process.env.DECOMPOSE_BACKEND ?? 'wasm') as BackendName;
  const engine = await initEngine({ backend });
  const images = tf.randomUniform([BATCH, 32, 32, 3], -1, 1, 'float32', 7) as tf.Tensor4D;
  const subjects = VARIANTS.map(subjectFor);
  // The wasm and cpu backends are synchronous: when predict returns, the work is done.
  const run = (model: LayersModel) => () =>
    tf.tidy(() => {
      model.predict(images, { batchSize: BATCH });
    });
  const difference = subjects.map((s) =>
    tf.tidy(() => {
      const [a, b] = [s.trained, s.inference].map(
        (m) => m.predict(images, { batchSize: BATCH }) as tf.Tensor,
      );
      return tf.div(tf.norm(tf.sub(a!, b!)), tf.norm(a!)).dataSync()[0]!;
    }),
  );
  const trainedSamples: Samples[] = subjects.map(() => ({ cpu: [], wall: [] }));
  const inferenceSamples: Samples[] = subjects.map(() => ({ cpu: [], wall: [] }));
  for (const s of subjects) {
    run(s.trained)(); // warm-up: first-call allocations, XNNPACK operator creation
    run(s.inference)();
  }
  for (let rep = 0; rep < REPS; rep++) {
    process.stdout.write(`round ${rep + 1}/${REPS}\n`);
    subjects.forEach((s, i) => {
      measure(run(s.trained), trainedSamples[i]!);
      measure(run(s.inference), inferenceSamples[i]!);
    });
  }
  const perSecond = (ms: number) => round((BATCH * 1000) / ms, 1);
  const records = subjects.map((s, i) => {
    const [a, b] = [trainedSamples[i]!, inferenceSamples[i]!];
    return {
      variant: s.variant.name,
      batch: BATCH,
      batchNormsFolded: s.folded,
      batchNormsUnfolded: s.unfolded,
      relativeOutputDifference: difference[i]!,
      trainedGraphImgPerS: perSecond(median(a.wall)),
      evalPathImgPerS: perSecond(median(b.wall)),
      trainedGraphImgPerCpuS: perSecond(median(a.cpu)),
      evalPathImgPerCpuS: perSecond(median(b.cpu)),
      /** Trained graph's median wall time / the eval path's. */
      speedup: round(median(a.wall) / median(b.wall), 3),
      /** The same from each side's fastest sample. */
      speedupOfFastest: round(Math.min(...a.wall) / Math.min(...b.wall), 3),
      wallMs: { trained: a.wall.map((v) => round(v, 1)), evalPath: b.wall.map((v) => round(v, 1)) },
    };
  });
  for (const s of subjects) {
    s.trained.dispose();
    s.inference.dispose();
  }
  images.dispose();
  printTable(
    ['variant', 'BN folded', 'trained img/s', 'eval path img/s', 'speed-up', 'of fastest', 'rel. diff'],
    records.map((r) => [
      r.variant,
      `${r.batchNormsFolded} (${r.batchNormsUnfolded} not)`,
      String(r.trainedGraphImgPerS),
      String(r.evalPathImgPerS),
      `${r.speedup}×`,
      `${r.speedupOfFastest}×`,
      r.relativeOutputDifference.toExponential(1),
    ]),
  );
  const file = fileURLToPath(new URL('../results/eval-path.json', import.meta.url));
  await writeAtomically(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), backend: engine.backend, threads: engine.threads, reps: REPS, records }, null, 2)}\n`,
  );
  process.stdout.write(`\nwrote ${file}\n`);
}

await main();
