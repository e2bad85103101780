// A sensitivity scan worker: rebuilds the model from the artifacts the parent posted, resolves the strategy
// from its specifier as the parent did, and scans its share of the layers with `scanSensitivity` on the
// calibration split. Cache reads are answered from the entries the parent sent; each new entry and each
// progress step goes back to the parent, which owns the cache file and the progress bar.
import { parentPort, workerData } from 'node:worker_threads';
import { initEngine } from '@decompose/engine';
import { loadPlugin, resolveStrategy } from '@decompose/pipeline';
import { type ScanCache, scanSensitivity } from '@decompose/sensitivity';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describeError } from '../errors.js';
import type { FromScanWorker, ScanWorkerSetup } from './worker-protocol.js';

const setup = workerData as ScanWorkerSetup;
const port = parentPort;
if (port === null) throw new Error('The sensitivity scan worker must run in a worker thread.');
const send = (message: FromScanWorker) => port.postMessage(message);

async function scan(): Promise<void> {
  await initEngine(setup.backend === undefined ? {} : { backend: setup.backend });
  // Layer classes must be registered before the model is rebuilt: the model's plugins', and the strategy's
  // (resolving a plugin strategy imports its module).
  for (const plugin of setup.modelPlugins) await loadPlugin(plugin);
  const { strategy } = await resolveStrategy(setup.strategy, 'strategy');
  const model = await tfl.loadLayersModel(tf.io.fromMemory(setup.artifacts));
  const images = tf.tensor4d(setup.images, setup.imageShape as [number, number, number, number]);
  const cache: ScanCache = {
    get: (key) => setup.cached.get(key),
    set: (key, entry) => send({ type: 'store', key, entry }),
  };
  try {
    const table = await scanSensitivity({
      model,
      strategy,
      layers: setup.layers,
      ratios: setup.ratios,
      optionsForRatio: (ratio) => ({ ...setup.baseOptions, ratio }),
      seed: setup.seed,
      calibration: { images, labels: setup.labels },
      cache,
      onProgress: ({ entry, cached }) => send({ type: 'progress', entry, cached }),
    });
    send({ type: 'done', table });
  } finally {
    images.dispose();
    model.dispose();
  }
}

try {
  await scan();
} catch (error) {
  send({ type: 'failed', message: describeError(error) });
}
