import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basisStrategy } from '@decompose/basis';
import { applyStrategy, inferenceModel, type SurgeryResult } from '@decompose/core';
import { createGradientComputer, type GradientComputer, initEngine } from '@decompose/engine';
import { createCifarResNet, listConvLayers } from '@decompose/resnet';
import { svdStrategy } from '@decompose/svd';
import { SgdOptimizer } from '@decompose/train';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { BenchError } from './errors.js';
import { flagParsers } from './flags.js';
import { MOBILENET_STAGES, MOBILENET_STEM, mobileNetV2 } from './mobilenet-model.js';
import { printTable, writeAtomically } from './output.js';
import {
  type Comparison,
  caseLabel,
  compareSides,
  expectedPeerParams,
  formatSpread,
  oursOn,
  type PeerCase,
  type PeerSample,
  type PeerVariant,
  peerCases,
  round,
  type SideFigures,
  sideFigures,
} from './peer-summary.js';
import { timeCalls } from './samples.js';

// Our engine side by side with PyTorch (Debian's python3-torch; bash bench/install-torch.sh) in one run: the
// same networks and batches, each round timing every case on PyTorch and then on ours (A B A B), so both see the
// same load on the shared machine. PyTorch runs in one long-lived process (bench/peer/reference.py) that takes
// requests on stdin. Without torch it says so and times ours alone.
// Usage: node bench/dist/peer.js [--quick] [--rounds N] [--min-ms N] [--only TEXT] [--python /usr/bin/python3]
// [--out FILE]; --only keeps the cases whose label contains TEXT (e.g. 'eval b1'). Writes bench/results/peer.json.

class PeerOptionError extends BenchError {
  override readonly name = 'PeerOptionError';
}

/** reference.py failed a request or exited. */
class PeerProcessError extends BenchError {
  override readonly name = 'PeerProcessError';
}

/** The PyTorch replica is not the network ours is (conv names or parameter count differ). */
class PeerMismatchError extends BenchError {
  override readonly name = 'PeerMismatchError';
}

const NUM_CLASSES = 10;
const IMAGE_SIZE = 32;
const LEARNING_RATE = 0.01;
const RATIO = 0.5;
const REFERENCE_SCRIPT = fileURLToPath(new URL('../peer/reference.py', import.meta.url));

type Answer = Record<string, unknown>;

/** The PyTorch process: one request at a time, answered in order. */
interface TorchPeer {
  version: string;
  request(body: Answer): Promise<Answer>;
  close(): Promise<void>;
}

/** Starts reference.py; resolves to why not when python3 or torch is missing. */
async function startTorchPeer(python: string): Promise<TorchPeer | { unavailable: string }> {
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawn(python, [REFERENCE_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    return { unavailable: `cannot start ${python} (${(error as Error).message})` };
  }
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const waiting: { resolve: (answer: Answer) => void; reject: (error: Error) => void }[] = [];
  let failure: Error | undefined;
  const fail = (error: Error) => {
    failure ??= error;
    for (const waiter of waiting.splice(0)) waiter.reject(failure);
  };
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      try {
        waiting.shift()?.resolve(JSON.parse(line) as Answer);
      } catch {
        fail(new PeerProcessError(`reference.py wrote a line that is not JSON: ${line.slice(0, 200)}`));
      }
    }
  });
  child.on('error', (error) => fail(new PeerProcessError(`cannot start ${python}: ${error.message}`)));
  child.on('exit', (code, signal) =>
    fail(
      new PeerProcessError(`reference.py exited (${signal ?? `code ${code}`}); its stderr: ${stderr.trim()}`),
    ),
  );
  const next = () =>
    new Promise<Answer>((resolve, reject) => {
      if (failure) reject(failure);
      else waiting.push({ resolve, reject });
    });
  let ready: Answer;
  try {
    ready = await next();
  } catch (error) {
    return { unavailable: (error as Error).message };
  }
  if (ready.ready !== true) {
    child.kill();
    return { unavailable: String(ready.reason) };
  }
  let id = 0;
  return {
    version: String(ready.torch),
    async request(body) {
      id += 1;
      const answer = next();
      child.stdin.write(`${JSON.stringify({ id, ...body })}\n`);
      const result = await answer;
      if (typeof result.error === 'string') {
        throw new PeerProcessError(`reference.py could not ${body.op} ${body.name}: ${result.error}`);
      }
      return result;
    },
    async close() {
      if (child.exitCode !== null || failure) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end(`${JSON.stringify({ op: 'quit' })}\n`);
      await exited;
    },
  };
}

/** Our network, trained by the train rows (SGD on its weights), and its BatchNorm-folded copy for eval. */
interface OurNetwork {
  name: string;
  model: LayersModel;
  folded: LayersModel;
  optimizer: SgdOptimizer;
  computers: GradientComputer[];
  /** Rewritten convs and the inner width of each (basis m, SVD rank), for the PyTorch replica. */
  factored: Record<string, number>;
  /** What the replica's build request says besides its name. */
  peerBuild: Answer;
  /** Trainable parameters the replica must have. */
  peerParams: number;
  /** Conv names the replica must have (sorted), or none to check. */
  peerConvs: string[];
  /** Input batches of the in-thread eval steps, made once. */
  inputs: tf.Tensor[];
}

function trainableParams(model: LayersModel): number {
  return model.trainableWeights.reduce((sum, w) => sum + w.read().size, 0);
}

function ourNetwork(
  name: string,
  model: LayersModel,
  factored: Record<string, number>,
  peerBuild: Answer,
): OurNetwork {
  const basisWidths = name.startsWith('resnet20 basis') ? Object.values(factored) : [];
  return {
    name,
    model,
    folded: inferenceModel(model).model,
    optimizer: new SgdOptimizer(model.trainableWeights),
    computers: [],
    factored,
    peerBuild: { ...peerBuild, factored },
    peerParams: expectedPeerParams(trainableParams(model), basisWidths),
    peerConvs: [],
    inputs: [],
  };
}

/** CIFAR ResNet-20 with option B shortcuts, rewritten as `variant` says (every 3×3 conv but the stem). */
function resNetVariant(variant: PeerVariant): OurNetwork {
  const dense = createCifarResNet({ arch: 'resnet20', shortcut: 'B', seed: 1 });
  const convs = listConvLayers(dense);
  const targets = convs
    .filter((c) => c.kernelSize[0] === 3 && c.kernelSize[1] === 3 && c.name !== 'stem.conv')
    .map((c) => c.name);
  const name = `resnet20 ${variant}`;
  const build = { net: 'resnet20' };
  let network: OurNetwork;
  if (variant === 'dense') {
    network = ourNetwork(name, dense, {}, build);
  } else {
    const rewrite: SurgeryResult<unknown> =
      variant === 'basis 0.5'
        ? applyStrategy(dense, basisStrategy, { layers: targets, options: { ratio: RATIO }, seed: 1 })
        : applyStrategy(dense, svdStrategy, { layers: targets, options: { mode: 'weight', ratio: RATIO } });
    dense.dispose();
    const factored = Object.fromEntries(
      rewrite.report.map((r) => [r.layer, Number(r.info?.m ?? r.info?.rank)] as const),
    );
    network = ourNetwork(name, rewrite.model, factored, build);
  }
  network.peerConvs = convs.map((c) => c.name).sort();
  return network;
}

function mobileNetNetwork(): OurNetwork {
  return ourNetwork(
    'mobilenet dense',
    mobileNetV2(IMAGE_SIZE, NUM_CLASSES),
    {},
    {
      net: 'mobilenet',
      stem: MOBILENET_STEM,
      stages: MOBILENET_STAGES,
      classes: NUM_CLASSES,
    },
  );
}

/** Builds the replica of `network` in reference.py and checks it is the same network. */
async function buildPeer(peer: TorchPeer, network: OurNetwork): Promise<void> {
  const answer = await peer.request({ op: 'build', name: network.name, ...network.peerBuild });
  if (answer.params !== network.peerParams) {
    throw new PeerMismatchError(
      `PyTorch's ${network.name} has ${answer.params} trainable parameters, ours implies ${network.peerParams}: ` +
        'the two networks differ; make bench/peer/reference.py build what ours builds.',
    );
  }
  const convs = [...(answer.convs as string[])].sort();
  if (network.peerConvs.length > 0 && convs.join() !== network.peerConvs.join()) {
    throw new PeerMismatchError(
      `PyTorch's ${network.name} convs [${convs.join(', ')}] are not ours [${network.peerConvs.join(', ')}].`,
    );
  }
}

function syntheticBatch(count: number): { images: Float32Array; labels: Int32Array; count: number } {
  const images = new Float32Array(count * IMAGE_SIZE * IMAGE_SIZE * 3);
  for (let i = 0; i < images.length; i++) images[i] = Math.sin(i * 12.9898) * 0.5;
  const labels = Int32Array.from({ length: count }, (_, i) => i % NUM_CLASSES);
  return { images, labels, count };
}

/** A gradient computer of `model` that the network closes with its own. */
async function computerOf(
  network: OurNetwork,
  model: LayersModel,
  workers: number,
): Promise<GradientComputer> {
  const computer = await createGradientComputer({
    model,
    workers,
    numClasses: NUM_CLASSES,
    backend: 'wasm',
    setupModules: ['@decompose/basis'],
    resolveFrom: import.meta.url,
  });
  network.computers.push(computer);
  return computer;
}

/**
 * Our step for a case, as the product runs it: a train step is `compute` (in this thread, or split over 2
 * workers) then the SGD update; eval predicts with the BatchNorm-folded model, in this thread or on 2 workers.
 */
async function ourStep(network: OurNetwork, peerCase: PeerCase): Promise<() => Promise<void>> {
  const data = syntheticBatch(peerCase.batch);
  const workers = oursOn(peerCase) === '2 workers' ? 2 : 0;
  if (peerCase.mode === 'train') {
    const computer = await computerOf(network, network.model, workers);
    return async () => {
      const { gradients } = await computer.compute(data);
      network.optimizer.step(gradients, LEARNING_RATE);
    };
  }
  if (workers > 0) {
    const computer = await computerOf(network, network.folded, workers);
    return async () => void (await computer.predict(data));
  }
  const images = tf.tensor4d(data.images, [data.count, IMAGE_SIZE, IMAGE_SIZE, 3]);
  network.inputs.push(images);
  return async () =>
    tf.tidy(() => void (network.folded.predict(images, { batchSize: data.count }) as tf.Tensor).dataSync());
}

async function samplePeer(
  peer: TorchPeer,
  network: OurNetwork,
  peerCase: PeerCase,
  minMs: number,
): Promise<PeerSample> {
  const answer = await peer.request({
    op: 'time',
    name: network.name,
    mode: peerCase.mode,
    batch: peerCase.batch,
    threads: peerCase.cores,
    min_ms: minMs,
  });
  return { calls: Number(answer.calls), ms: Number(answer.ms), cpu_ms: Number(answer.cpu_ms) };
}

interface PeerRecord extends PeerCase {
  ours_on: 'main-thread' | '2 workers';
  ours: SideFigures;
  /** Null without torch. */
  pytorch: SideFigures | null;
  /** Ours over PyTorch; null without torch. */
  comparison: Comparison | null;
}

const times = (ratio: number) => `${ratio.toFixed(2)}×`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      'min-ms': { type: 'string' },
      python: { type: 'string', default: '/usr/bin/python3' },
      only: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const { integer } = flagParsers(PeerOptionError);
  const rounds = integer('rounds', values.rounds ?? (values.quick ? '2' : '7'), 1);
  const minMs = integer('min-ms', values['min-ms'] ?? (values.quick ? '200' : '500'), 0);
  const out = values.out ?? fileURLToPath(new URL('../results/peer.json', import.meta.url));
  const cases = peerCases().filter((c) => values.only === undefined || caseLabel(c).includes(values.only));
  if (cases.length === 0) {
    throw new PeerOptionError(
      `--only '${values.only}' matches no case; cases are named like '${caseLabel(peerCases()[0]!)}'.`,
    );
  }
  const started = performance.now();
  const loadBefore = loadavg()[0]!;

  const engine = await initEngine({ backend: 'wasm' });
  const launch = await startTorchPeer(values.python);
  const peer = 'unavailable' in launch ? undefined : launch;
  if ('unavailable' in launch) {
    process.stdout.write(
      `PyTorch is not available: ${launch.unavailable}.\n` +
        'Timing our engine alone; `bash bench/install-torch.sh` installs Debian’s python3-torch for the comparison.\n',
    );
  } else {
    process.stdout.write(
      `PyTorch ${launch.version} (${values.python}) against our engine (${engine.backend})\n`,
    );
  }
  const networks = new Map<string, OurNetwork>();
  try {
    for (const peerCase of cases) {
      const name = `${peerCase.net} ${peerCase.variant}`;
      if (networks.has(name)) continue;
      const network = peerCase.net === 'mobilenet' ? mobileNetNetwork() : resNetVariant(peerCase.variant);
      networks.set(name, network);
      if (peer) await buildPeer(peer, network);
    }
    const subjects: { peerCase: PeerCase; network: OurNetwork; step: () => Promise<void> }[] = [];
    for (const peerCase of cases) {
      const network = networks.get(`${peerCase.net} ${peerCase.variant}`)!;
      subjects.push({ peerCase, network, step: await ourStep(network, peerCase) });
    }
    const samples = subjects.map(() => ({ ours: [] as PeerSample[], pytorch: [] as PeerSample[] }));
    // Round 0 warms both sides up (first-call allocations, operator creation, thread pools) and is dropped.
    for (let round = 0; round <= rounds; round++) {
      for (const [i, { peerCase, network, step }] of subjects.entries()) {
        const pytorch = peer ? await samplePeer(peer, network, peerCase, minMs) : undefined;
        const ours = await timeCalls(step, minMs); // as reference.py times PyTorch
        if (round === 0) continue;
        samples[i]!.ours.push(ours);
        if (pytorch) samples[i]!.pytorch.push(pytorch);
      }
      const elapsed = ((performance.now() - started) / 1000).toFixed(0);
      process.stdout.write(`${round === 0 ? 'warm-up' : `round ${round}/${rounds}`} done (${elapsed} s)\n`);
    }
    const records: PeerRecord[] = subjects.map(({ peerCase }, i) => {
      const { ours, pytorch } = samples[i]!;
      return {
        ...peerCase,
        ours_on: oursOn(peerCase),
        ours: sideFigures(ours, peerCase.batch),
        pytorch: peer ? sideFigures(pytorch, peerCase.batch) : null,
        comparison: peer ? compareSides(ours, pytorch, peerCase.batch) : null,
      };
    });
    printTable(
      ['case', 'ours on', 'PyTorch img/s', 'ours img/s', 'ours/PyTorch', 'per round', 'ms/img PyTorch, ours'],
      records.map((r) => [
        caseLabel(r),
        r.ours_on,
        r.pytorch ? formatSpread(r.pytorch.img_per_s) : '—',
        formatSpread(r.ours.img_per_s),
        r.comparison ? times(r.comparison.ratio) : '—',
        r.comparison
          ? `${times(r.comparison.ratio_per_round.min)}–${times(r.comparison.ratio_per_round.max)}`
          : '—',
        `${r.pytorch?.ms_per_image ?? '—'}, ${r.ours.ms_per_image}`,
      ]),
    );
    const seconds = Math.round((performance.now() - started) / 1000);
    const result = {
      date: new Date().toISOString(),
      seconds,
      // 1-minute load average before and after: on 2 cores, much above 2 means other programs took turns.
      load_average: { before: round(loadBefore), after: round(loadavg()[0]!) },
      // Inherited by reference.py; unset, PyTorch's OpenMP threads spin while waiting (see bench/results/README.md).
      omp_wait_policy: process.env.OMP_WAIT_POLICY ?? null,
      rounds,
      min_ms: minMs,
      engine: { backend: engine.backend, threads: engine.threads },
      pytorch: peer
        ? { version: peer.version, python: values.python }
        : { unavailable: 'unavailable' in launch ? launch.unavailable : '' },
      networks: [...networks.values()].map((n) => ({
        name: n.name,
        params: trainableParams(n.model),
        pytorch_params: n.peerParams,
        factored: n.factored,
      })),
      notes: [
        'img/s by wall time, one sample per round per side (calls until min_ms passed), PyTorch then ours.',
        'ResNet-20: option B shortcuts; basis/svd 0.5 on every 3×3 conv but the stem. PyTorch basis = k×k conv to m then a full 1×1 (m² more weights per layer than our shrunk form); svd = the same pair at the SVD rank.',
        'ours: eval on the product eval path (core inferenceModel: BatchNorm folded, activations fused), train = compute + SgdOptimizer step; 1 core = this thread, 2 cores = 2 workers (batch 1: this thread). PyTorch: torch.set_num_threads(cores), eval under inference_mode with BatchNorm as is.',
      ],
      records,
    };
    await writeAtomically(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(
      `\n${rounds} rounds in ${seconds} s, load average ${result.load_average.before} → ${result.load_average.after}; wrote ${out}\n`,
    );
  } finally {
    for (const network of networks.values()) {
      for (const computer of network.computers) await computer.close();
      tf.dispose(network.inputs);
      network.folded.dispose();
      network.model.dispose();
    }
    await peer?.close();
  }
}

try {
  await main();
} catch (error) {
  if (!(error instanceof BenchError)) throw error;
  process.stderr.write(`${error.name}: ${error.message}\n`);
  process.exitCode = 2;
}
