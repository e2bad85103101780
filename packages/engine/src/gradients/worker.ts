// A gradient worker: rebuilds the model from its topology, then per step loads the shared weights, computes
// the loss and gradients of its batch slice and writes them (and its updated BatchNorm statistics) back; per
// prediction loads the shared weights and sends back the model's outputs on its slice, in inference mode.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../index.js';
import { describeError } from './errors.js';
import type { FromWorker, ToWorker, WorkerSetup } from './protocol.js';
import { inferenceStep, trainingStep } from './step.js';
import { checkSameLayout, layoutOf, readWeights, weightView, writeWeights } from './weights.js';

const setup = workerData as WorkerSetup;
const port = parentPort;
if (port === null) throw new Error('The gradient worker must run in a worker thread.');
const send = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

/** A setup module as an import specifier: bare names resolve from `resolveFrom`, then from this file. */
function importable(specifier: string): string {
  if (specifier.startsWith('file:') || specifier.startsWith('node:')) return specifier;
  if (path.isAbsolute(specifier)) return pathToFileURL(specifier).href;
  try {
    return pathToFileURL(createRequire(setup.resolveFrom).resolve(specifier)).href;
  } catch {
    return specifier;
  }
}

async function start(): Promise<tfl.LayersModel> {
  for (const specifier of setup.setupModules) await import(importable(specifier));
  const engine = await initEngine(setup.backend === undefined ? {} : { backend: setup.backend });
  const model = await tfl.models.modelFromJSON({ modelTopology: setup.topology });
  checkSameLayout(setup.trainable, layoutOf(model.trainableWeights), 'trainable');
  checkSameLayout(setup.nonTrainable, layoutOf(model.nonTrainableWeights), 'non-trainable');
  send({ type: 'ready', backend: engine.backend });
  return model;
}

/** The version of the shared weights the model holds; -1 when none, or when a step changed its statistics. */
let loadedVersion = -1;

/** Sets the model's weights, BatchNorm moving statistics included, to the main thread's current ones. */
function loadSharedWeights(model: tfl.LayersModel, version: number): void {
  if (version === loadedVersion) return;
  loadedVersion = version;
  const weights = new Float32Array(setup.weights);
  writeWeights(model.trainableWeights, setup.trainable, weights.subarray(0, setup.trainable.size));
  writeWeights(model.nonTrainableWeights, setup.nonTrainable, weights.subarray(setup.trainable.size));
}

function step(model: tfl.LayersModel, message: Extract<ToWorker, { type: 'step' }>): FromWorker {
  loadSharedWeights(model, message.weightsVersion);
  loadedVersion = -1; // the training-mode call below moves this worker's BatchNorm statistics its own way
  const result = trainingStep(model, message, setup.exampleShape, setup.loss);
  const gradients = new Float32Array(setup.gradients);
  result.gradients.forEach((gradient, i) => {
    weightView(gradients, setup.trainable, i).set(gradient);
  });
  readWeights(model.nonTrainableWeights, setup.nonTrainable, new Float32Array(setup.statistics));
  return { type: 'stepped', loss: result.loss, correct: result.correct, numTensors: tf.memory().numTensors };
}

function predict(model: tfl.LayersModel, message: Extract<ToWorker, { type: 'predict' }>): void {
  loadSharedWeights(model, message.weightsVersion);
  const outputs = inferenceStep(model, message, setup.exampleShape).slice();
  send({ type: 'predicted', outputs }, [outputs.buffer]);
}

try {
  const model = await start();
  port.on('message', (message: ToWorker) => {
    try {
      if (message.type === 'step') send(step(model, message));
      else if (message.type === 'predict') predict(model, message);
      else send({ type: 'memory', numTensors: tf.memory().numTensors });
    } catch (error) {
      send({ type: 'failed', message: describeError(error) });
    }
  });
} catch (error) {
  send({ type: 'failed', message: describeError(error) });
}
