import { median, type TimedCalls } from './samples.js';

// The pure half of bench:peer (peer.ts): which cases it times, and the figures it makes of the samples.

/** The networks bench:peer times on both sides. */
export type PeerNet = 'resnet20' | 'mobilenet';
/** The ResNet-20 rewrites: every 3×3 conv but the stem as a basis convolution, or as a weight-SVD pair. */
export type PeerVariant = 'dense' | 'basis 0.5' | 'svd 0.5';

/** One row of the comparison: a network, a step, a batch size and the cores both sides may use. */
export interface PeerCase {
  net: PeerNet;
  variant: PeerVariant;
  mode: 'train' | 'eval';
  batch: number;
  cores: 1 | 2;
}

/** Batch of the throughput rows (train step and eval). */
export const PEER_BATCH = 128;

/**
 * The rows, in the order each round times them: ResNet-20 dense, basis 0.5 and SVD 0.5, train step and eval at
 * batch {@link PEER_BATCH} on 1 and 2 cores; then eval latency at batch 1 of dense ResNet-20 and MobileNetV2.
 */
export function peerCases(): PeerCase[] {
  const cases: PeerCase[] = [];
  for (const variant of ['dense', 'basis 0.5', 'svd 0.5'] as const) {
    for (const mode of ['train', 'eval'] as const) {
      for (const cores of [1, 2] as const)
        cases.push({ net: 'resnet20', variant, mode, batch: PEER_BATCH, cores });
    }
  }
  for (const net of ['resnet20', 'mobilenet'] as const) {
    for (const cores of [1, 2] as const) cases.push({ net, variant: 'dense', mode: 'eval', batch: 1, cores });
  }
  return cases;
}

/** Where our side runs a case: a batch is split over 2 workers on 2 cores; one image is not split. */
export function oursOn(peerCase: PeerCase): 'main-thread' | '2 workers' {
  return peerCase.cores === 2 && peerCase.batch > 1 ? '2 workers' : 'main-thread';
}

/** e.g. `resnet20 basis 0.5 train b128 2 cores`. */
export function caseLabel({ net, variant, mode, batch, cores }: PeerCase): string {
  return `${net} ${variant} ${mode} b${batch} ${cores} core${cores === 1 ? '' : 's'}`;
}

/** One timing sample of one side: `calls` calls of the step took `ms` of wall time and `cpu_ms` of CPU time. */
/** One side's sample of a case: calls timed together (PyTorch's as reference.py reports them). */
export type PeerSample = TimedCalls;

/** Median and range of one figure over the rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** One side's figures for a case, from one sample per round. */
export interface SideFigures {
  /** Images per second of wall time. */
  img_per_s: Spread;
  /** Median wall milliseconds per image (the latency, at batch 1). */
  ms_per_image: number;
  /** Median images per CPU-second (all threads of the process). */
  img_per_cpu_s: number;
  samples: PeerSample[];
}

/** Ours against PyTorch for one case. */
export interface Comparison {
  /** Our median img/s over PyTorch's. */
  ratio: number;
  /** Our img/s over PyTorch's within each round (the two samples were taken one after the other). */
  ratio_per_round: Spread;
}

/** Images per second of wall time of one sample at `batch`. */
export function imagesPerSecond(sample: PeerSample, batch: number): number {
  return (batch * sample.calls * 1000) / sample.ms;
}

/** Median (the upper middle one of an even count), minimum and maximum; throws on no values. */
export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) throw new RangeError('spreadOf needs at least one value');
  return { median: median([...values]), min: Math.min(...values), max: Math.max(...values) };
}

/** Three significant digits (one decimal from 100 up): the samples are noisier than that. */
export function round(value: number): number {
  return value >= 100 ? Math.round(value * 10) / 10 : Number(value.toPrecision(3));
}

function roundSpread(spread: Spread): Spread {
  return { median: round(spread.median), min: round(spread.min), max: round(spread.max) };
}

/** The figures of one side from its samples (one per round) at `batch`. */
export function sideFigures(samples: readonly PeerSample[], batch: number): SideFigures {
  const rates = samples.map((s) => imagesPerSecond(s, batch));
  const perImage = spreadOf(rates).median;
  const perCpuSecond = median(samples.map((s) => (batch * s.calls * 1000) / s.cpu_ms));
  return {
    img_per_s: roundSpread(spreadOf(rates)),
    ms_per_image: round(1000 / perImage),
    img_per_cpu_s: round(perCpuSecond),
    samples: samples.map((s) => ({ calls: s.calls, ms: round(s.ms), cpu_ms: round(s.cpu_ms) })),
  };
}

/** Ours over PyTorch: the ratio of the medians and the ratios round by round (samples paired by index). */
export function compareSides(
  ours: readonly PeerSample[],
  pytorch: readonly PeerSample[],
  batch: number,
): Comparison {
  if (ours.length !== pytorch.length || ours.length === 0) {
    throw new RangeError(
      `compareSides needs one sample of each side per round, got ${ours.length} and ${pytorch.length}`,
    );
  }
  const rate = (sample: PeerSample) => imagesPerSecond(sample, batch);
  const perRound = ours.map((sample, i) => rate(sample) / rate(pytorch[i]!));
  const ratio = spreadOf(ours.map(rate)).median / spreadOf(pytorch.map(rate)).median;
  return { ratio: round(ratio), ratio_per_round: roundSpread(spreadOf(perRound)) };
}

/**
 * The trainable parameters the PyTorch replica must have, given ours: the same, except that PyTorch's naive
 * basis layer (a conv to m filters, then a full 1×1 combination) keeps as weights the m × m identity block that
 * our shrunk basis convolution leaves out, so it has m² more per basis layer (`basisWidths`: each layer's m).
 */
export function expectedPeerParams(oursTrainable: number, basisWidths: readonly number[]): number {
  return oursTrainable + basisWidths.reduce((sum, m) => sum + m * m, 0);
}

/** `812 (790–850)`: a median and its range, as the table prints them. */
export function formatSpread(spread: Spread): string {
  return `${spread.median} (${spread.min}–${spread.max})`;
}
