import { readCifar10, selectImages } from '@decompose/cifar10';
import { createCifarResNet } from '@decompose/resnet';
import { train } from '@decompose/train';
import { bundledSubset } from './data.js';
import type { Console } from './progress.js';
import { formatSmoke, runSmoke } from './smoke.js';

/** Training steps the demo runs (batch 128), enough for a throughput figure. */
const DEMO_STEPS = 3;
const DEMO_BATCH = 128;

/**
 * `decompose demo` (for now): the engine smoke run, then a few SGD steps of ResNet-20 on the bundled subset on
 * the default backend, printing training images/s.
 */
export async function runDemo(out: Console): Promise<{ imagesPerSecond: number }> {
  for (const line of formatSmoke(await runSmoke())) out.log(line);
  const data = await readCifar10(bundledSubset());
  const trainData = selectImages(
    data.train,
    Uint32Array.from({ length: DEMO_STEPS * DEMO_BATCH }, (_, i) => i),
  );
  const model = createCifarResNet({ arch: 'resnet20' });
  try {
    let imagesPerSecond = 0;
    const bar = out.progress('resnet20 training steps', DEMO_STEPS);
    await train({
      model,
      trainData,
      epochs: 1,
      batchSize: DEMO_BATCH,
      schedule: { type: 'constant', lr: 0.1 },
      optimizer: { momentum: 0.9, weightDecay: 5e-4 },
      onStep: (p) => {
        imagesPerSecond = p.imagesPerSecond;
        bar.update(p.step, `loss ${p.loss.toFixed(3)}`);
      },
    });
    bar.stop();
    out.log(
      `resnet20: ${DEMO_STEPS} SGD steps of batch ${DEMO_BATCH}, ${imagesPerSecond.toFixed(0)} img/s training`,
    );
    return { imagesPerSecond };
  } finally {
    model.dispose();
  }
}
