// bench:web: the page (apps/web) in headless Chromium on the demo ResNet-20 pair, original vs compressed, at
// batch 32 and batch 1, on 1 thread and on every core, with the engine's kernels and with XNNPACK's, the four
// set-ups alternating page load by page load.
// [--rounds N] [--limit IMAGES] [--out FILE]. Writes bench/results/web.json.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findBundledSubset, TEST_FILE, TRAIN_FILES } from '@decompose/cifar10';
import { decodeBatch } from '@decompose/cifar10/browser';
import { initEngine } from '@decompose/engine';
import {
  copyPage,
  createDemoModels,
  KERNEL_SETS,
  type PageResults,
  prepareSite,
  RESULTS_PROPERTY,
  serveSite,
} from '@decompose/web';
import { chromium } from 'playwright-core';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { printTable, writeAtomically } from './output.js';
import { median } from './samples.js';

class WebBenchError extends BenchError {
  override readonly name = 'WebBenchError';
}

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
];

type Done = Extract<PageResults, { status: 'done' }>;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { rounds: { type: 'string' }, limit: { type: 'string' }, out: { type: 'string' } },
  });
  const { integer } = flagParsers(WebBenchError);
  const rounds = integer('rounds', values.rounds ?? '3', 1);
  const limit = integer('limit', values.limit ?? '256', 32);
  const out = values.out ?? fileURLToPath(new URL('../results/web.json', import.meta.url));
  if (!existsSync(CHROMIUM)) {
    throw new WebBenchError(`${CHROMIUM} is missing; install it with .ci/install-chromium.sh`);
  }
  const started = performance.now();
  const loadBefore = loadavg()[0]!;
  const work = await mkdtemp(join(tmpdir(), 'decompose-bench-web-'));
  try {
    await initEngine({ backend: 'wasm' });
    const subset = findBundledSubset();
    const calibration = decodeBatch(await readFile(join(subset, TRAIN_FILES[0])), { limit: 128 });
    // The web README's demo pair: stage 2 as BasisConv2D (half the filters), stage 3's second convs as SVD pairs.
    const { original, compressed } = createDemoModels({ seed: 7, calibration });
    const site = join(work, 'site');
    try {
      await copyPage(site);
      await prepareSite({
        dir: site,
        original,
        compressed,
        testBatch: join(subset, TEST_FILE),
        sampleCount: 8,
      });
    } finally {
      original.dispose();
      compressed.dispose();
    }
    const server = await serveSite(site, { port: 0 });
    const context = await chromium.launchPersistentContext(join(work, 'profile'), {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
    });
    const threadCounts = [1, availableParallelism()];
    const setups = KERNEL_SETS.flatMap((kernels) => threadCounts.map((threads) => ({ kernels, threads })));
    const runs: { round: number; results: Done }[] = [];
    try {
      for (let round = 0; round < rounds; round++) {
        for (const { kernels, threads } of setups) {
          const page = await context.newPage();
          await page.goto(`${server.url}?limit=${limit}&threads=${threads}&kernels=${kernels}`);
          await page.waitForFunction(
            (property) => {
              const status = (globalThis as unknown as Record<string, { status: string } | undefined>)[
                property
              ]?.status;
              return status !== undefined && status !== 'running';
            },
            RESULTS_PROPERTY,
            { timeout: 300_000 },
          );
          const results = await page.evaluate(
            (property) => (globalThis as unknown as Record<string, PageResults>)[property]!,
            RESULTS_PROPERTY,
          );
          await page.close();
          if (results.status !== 'done')
            throw new WebBenchError(`the page failed: ${JSON.stringify(results)}`);
          runs.push({ round, results });
          console.log(
            `round ${round + 1}, ${results.kernels} kernels, ${results.threads} thread(s): ` +
              results.models
                .map(
                  (m) =>
                    `${m.slot} ${m.msPerImage.toFixed(2)} ms/img b32, ${m.msPerImageBatch1.toFixed(2)} ms b1`,
                )
                .join('; '),
          );
        }
      }
    } finally {
      await context.close();
      await server.close();
    }
    const summary = setups.flatMap(({ kernels, threads }) =>
      (['original', 'compressed'] as const).map((slot) => {
        const of = runs
          .filter((r) => r.results.threads === threads && r.results.kernels === kernels)
          .map((r) => r.results.models.find((m) => m.slot === slot)!);
        const b32 = median(of.map((m) => m.msPerImage));
        const b1 = median(of.map((m) => m.msPerImageBatch1));
        return {
          kernels,
          threads,
          slot,
          ms_per_image_b32: b32,
          images_per_second_b32: 1000 / b32,
          ms_b1: b1,
          images_per_second_b1: 1000 / b1,
        };
      }),
    );
    printTable(
      ['kernels', 'threads', 'model', 'b32 ms/img', 'b32 img/s', 'b1 ms', 'b1 img/s'],
      summary.map((s) => [
        s.kernels,
        String(s.threads),
        s.slot,
        s.ms_per_image_b32.toFixed(2),
        s.images_per_second_b32.toFixed(0),
        s.ms_b1.toFixed(2),
        s.images_per_second_b1.toFixed(0),
      ]),
    );
    const first = runs[0]!.results;
    await writeAtomically(
      out,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          browser: `${CHROMIUM} (headless)`,
          cross_origin_isolated: first.crossOriginIsolated,
          images: first.imageCount,
          rounds,
          load_average_start: loadBefore,
          load_average_end: loadavg()[0],
          bench_seconds: (performance.now() - started) / 1000,
          models: first.models.map((m) => ({
            slot: m.slot,
            params: m.params,
            layer_classes: m.layerClasses,
          })),
          summary,
          runs: runs.map((r) => ({
            round: r.round,
            kernels: r.results.kernels,
            threads: r.results.threads,
            models: r.results.models.map((m) => ({
              slot: m.slot,
              ms_per_image_b32: m.msPerImage,
              ms_b1: m.msPerImageBatch1,
            })),
          })),
        },
        null,
        2,
      )}\n`,
    );
    console.log(`wrote ${out}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof BenchError ? `${error.name}: ${error.message}` : error);
  process.exitCode = 1;
});
