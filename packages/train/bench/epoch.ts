// Times real training epochs: ResNet-20 (shortcut B, PyTorch init) on the bundled CIFAR-10 subset, batch 128,
// the reference recipe (SGD 0.9, cosine from 0.1, weight decay 5e-4 on all weights, crop + flip).
// Usage: node --conditions=@decompose/source packages/train/bench/run.mjs [--workers N] [--epochs E] [--out file.json]
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { findBundledSubset, readCifar10 } from '@decompose/cifar10';
import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import { train } from '@decompose/train';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '0' },
    epochs: { type: 'string', default: '1' },
    batch: { type: 'string', default: '128' },
    out: { type: 'string' },
  },
});
const workers = Number(values.workers);
const epochs = Number(values.epochs);
const batchSize = Number(values.batch);

const engine = await initEngine();
const data = await readCifar10(findBundledSubset());
const model = createCifarResNet({ arch: 'resnet20', shortcut: 'B', init: 'pytorch', seed: 0 });
let lastReport = 0;
const result = await train({
  model,
  trainData: data.train,
  evalData: data.test,
  epochs,
  batchSize,
  seed: 0,
  schedule: { type: 'cosine', lr: 0.1 },
  optimizer: { momentum: 0.9, weightDecay: 5e-4, weightDecayScope: 'all' },
  workers,
  onStep: (p) => {
    const now = performance.now();
    if (now - lastReport < 10_000 && p.step !== p.stepsPerEpoch) return;
    lastReport = now;
    console.log(
      `epoch ${p.epoch} step ${p.step}/${p.stepsPerEpoch} loss ${p.loss.toFixed(3)} acc ${p.accuracy.toFixed(3)} ` +
        `lr ${p.lr.toFixed(4)} ${p.imagesPerSecond.toFixed(1)} img/s`,
    );
  },
});

const rows = result.history.map((m) => ({
  epoch: m.epoch,
  trainSeconds: Number(m.train.seconds.toFixed(1)),
  trainImagesPerSecond: Number(m.train.imagesPerSecond.toFixed(1)),
  trainLoss: Number(m.train.loss.toFixed(4)),
  trainAccuracy: Number(m.train.accuracy.toFixed(4)),
  evalSeconds: Number((m.eval?.seconds ?? 0).toFixed(1)),
  evalImagesPerSecond: Number((m.eval?.imagesPerSecond ?? 0).toFixed(1)),
  testAccuracy: Number((m.eval?.accuracy ?? 0).toFixed(4)),
}));
console.log(
  `backend: ${engine.backend} (${engine.threads} threads)` +
    engine.skipped.map((s) => `; skipped ${s.backend}: ${s.reason}`).join(''),
);
console.log(
  `workers ${workers}, batch ${batchSize}, ${data.train.count} train / ${data.test.count} test images`,
);
console.table(rows);
if (values.out) {
  await writeFile(
    values.out,
    `${JSON.stringify({ engine, workers, batchSize, train: data.train.count, test: data.test.count, epochs: rows }, null, 2)}\n`,
  );
}
