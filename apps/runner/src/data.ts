import {
  type Cifar10Dataset,
  type Cifar10Images,
  downloadCifar10,
  findBundledSubset,
  readCifar10,
  resolveCifar10Dir,
  selectImages,
} from '@decompose/cifar10';
import type { Console } from './progress.js';

/** Where a command's images come from (the data fields of every command's config). */
export interface DataSource {
  data?: string;
  download: boolean;
  cacheDir: string;
  limitTrain?: number;
  limitTest?: number;
}

/** The images a command works on, and the folder they were read from. */
export interface LoadedData {
  dir: string;
  train: Cifar10Images;
  test: Cifar10Images;
  classNames: readonly string[];
}

function firstImages(images: Cifar10Images, limit: number | undefined): Cifar10Images {
  if (limit === undefined || limit >= images.count) return images;
  return selectImages(
    images,
    Uint32Array.from({ length: limit }, (_, i) => i),
  );
}

/**
 * Reads CIFAR-10 from `--data`, else the full set downloaded into the cache (`--download`), else the bundled
 * subset; `limitTrain`/`limitTest` keep only the first images of each split.
 */
export async function loadData(source: DataSource, out: Console): Promise<LoadedData> {
  let dir: string;
  if (source.data !== undefined) {
    dir = await resolveCifar10Dir({ dataDir: source.data });
  } else if (source.download) {
    const bar = out.progress('download CIFAR-10', 100);
    dir = await downloadCifar10({
      cacheDir: source.cacheDir,
      onProgress: (p) =>
        bar.update(p.totalBytes ? Math.floor((100 * p.receivedBytes) / p.totalBytes) : 0, p.phase),
    });
    bar.stop();
  } else {
    dir = findBundledSubset();
  }
  const dataset: Cifar10Dataset = await readCifar10(dir);
  const train = firstImages(dataset.train, source.limitTrain);
  const test = firstImages(dataset.test, source.limitTest);
  out.log(`data: ${dir} (${train.count} train, ${test.count} test images)`);
  return { dir, train, test, classNames: dataset.classNames };
}
