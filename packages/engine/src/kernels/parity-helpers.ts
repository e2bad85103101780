// Test helpers for kernel parity against the cpu backend (not exported from the package).
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../index.js';

/** Deterministic values in [-1, 1) from a linear congruential generator, so every backend sees the same input. */
export function seededValues(size: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 2 ** 31 - 1;
  }
  return values;
}

/** max |a − b| over max |b|: the error relative to the reference's scale. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

export type Shape4 = [number, number, number, number];
export type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

/** Explicit padding wider than a 3×3 kernel (3 rows on top, 4 columns on the right): taps that read only zeros. */
const WIDER_THAN_KERNEL: Pad = [
  [0, 0],
  [3, 0],
  [0, 4],
  [0, 0],
];

export interface ConvCase {
  name: string;
  batch: number;
  height: number;
  width?: number;
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  stride: number;
  pad: Pad;
}

export const conv = (
  name: string,
  batch: number,
  height: number,
  inChannels: number,
  outChannels: number,
  kernel: number | [number, number],
  stride: number,
  pad: Pad = 'same',
): ConvCase => ({
  name,
  batch,
  height,
  inChannels,
  outChannels,
  kernel: typeof kernel === 'number' ? [kernel, kernel] : kernel,
  stride,
  pad,
});

// Every conv shape of CIFAR ResNet-20 and ResNet-18 (batch 1 where channels are wide), plus the factorised
// shapes decomposition produces and the padding corner cases.
const cases: ConvCase[] = [
  conv('resnet20 stem 3→16', 2, 32, 3, 16, 3, 1),
  conv('resnet20 16→16 s1 @32', 2, 32, 16, 16, 3, 1),
  conv('resnet20 16→32 s2 @32', 2, 32, 16, 32, 3, 2),
  conv('resnet20 32→32 s1 @16', 2, 16, 32, 32, 3, 1),
  conv('resnet20 32→64 s2 @16', 2, 16, 32, 64, 3, 2),
  conv('resnet20 64→64 s1 @8', 2, 8, 64, 64, 3, 1),
  conv('resnet 1×1 projection 16→32 s2', 2, 32, 16, 32, 1, 2),
  conv('resnet 1×1 projection 32→64 s2', 2, 16, 32, 64, 1, 2),
  conv('resnet18 stem 3→64 @32', 2, 32, 3, 64, 3, 1),
  conv('resnet18 1×1 projection 64→128 s2', 1, 32, 64, 128, 1, 2),
  conv('resnet18 1×1 projection 128→256 s2', 1, 16, 128, 256, 1, 2),
  conv('resnet18 1×1 projection 256→512 s2', 1, 8, 256, 512, 1, 2),
  conv('3×1 s1 same', 2, 16, 16, 8, [3, 1], 1),
  conv('1×3 s1 same', 2, 16, 8, 16, [1, 3], 1),
  conv('3×1 s2 same', 2, 16, 16, 8, [3, 1], 2),
  conv('1×3 s2 valid', 2, 16, 8, 16, [1, 3], 2, 'valid'),
  conv('1×1 after k×k (s1)', 2, 16, 8, 32, 1, 1),
  conv('3×3 valid', 2, 10, 8, 8, 3, 1, 'valid'),
  // Basis convolutions: few outputs (the m basis filters), few dy channels in the input gradient, and input
  // channel counts that mix the 12- and 8-channel blocks of the filter gradient.
  conv('basis 16→4 s1 @32', 2, 32, 16, 4, 3, 1),
  conv('basis 32→8 s1 @16', 2, 16, 32, 8, 3, 1),
  conv('basis 16→8 s2 @32', 2, 32, 16, 8, 3, 2),
  conv('basis 32→16 s2 @16, padded then valid', 2, 18, 32, 16, 3, 2, 'valid'),
  conv('4→16 s1 (an input gradient from 4 channels)', 2, 12, 4, 16, 3, 1),
  conv('20→4 s1', 2, 9, 20, 4, 3, 1),
  conv('64→12 s1', 1, 8, 64, 12, 3, 1),
  conv('3→64 stem', 1, 16, 3, 64, 3, 1),
  conv('basis 16→9 s1 (m = round(0.57·16))', 2, 16, 16, 9, 3, 1),
  conv('basis 16→2 s2 (m = 0.125·16)', 2, 16, 16, 2, 3, 2),
  // Output channels not a multiple of 4: the SIMD kernels run on copies padded with zero channels.
  conv('3×3 s2 same, 6 outputs', 2, 9, 5, 6, 3, 2),
  conv('1×1 s1, 10 outputs', 2, 8, 4, 10, 1, 1),
  conv('3×3 s2 valid, odd leftover', 2, 10, 4, 8, 3, 2, 'valid'),
  conv('3×3 s2 same, odd size', 2, 7, 4, 8, 3, 2),
  conv('5×5 s2 same', 2, 12, 4, 8, 5, 2),
  conv('3×3 explicit padding', 2, 9, 4, 8, 3, 2, [
    [0, 0],
    [2, 1],
    [0, 2],
    [0, 0],
  ]),
  conv('3×3 s1 padding wider than the kernel', 2, 6, 4, 8, 3, 1, WIDER_THAN_KERNEL),
  { ...conv('3×3 s1 non-square', 2, 6, 4, 8, 3, 1), width: 11 },
  { ...conv('3×3 s2 non-square', 2, 9, 4, 8, 3, 2), width: 14 },
  // 3×3 stride 1 from at least 8 channels (a multiple of 4) runs as Winograd's F(2×2, 3×3): odd outputs (a half
  // tile at the edge), padding wider than the kernel, valid, non-square, outputs padded to whole vectors.
  conv('Winograd 8→8 s1, odd size', 2, 7, 8, 8, 3, 1),
  { ...conv('Winograd 8→12 s1 non-square', 2, 6, 8, 12, 3, 1), width: 11 },
  conv('Winograd 8→8 s1 padding wider than the kernel', 2, 6, 8, 8, 3, 1, WIDER_THAN_KERNEL),
  { ...conv('Winograd 12→8 s1 valid non-square', 2, 9, 12, 8, 3, 1, 'valid'), width: 12 },
  conv('Winograd 16→7 s1 (an SVD rank: outputs padded to whole vectors)', 2, 9, 16, 7, 3, 1),
  // The filter gradient's F(3×3, 2×2) needs outputs in groups of 16: odd outputs (half tiles of dy), valid,
  // non-square, wide padding, several groups.
  conv('Winograd 8→16 s1, odd size', 2, 7, 8, 16, 3, 1),
  { ...conv('Winograd 12→16 s1 valid non-square', 2, 9, 12, 16, 3, 1, 'valid'), width: 12 },
  { ...conv('Winograd 8→32 s1 non-square, odd width', 2, 6, 8, 32, 3, 1), width: 9 },
  conv('Winograd 8→16 s1 padding wider than the kernel', 2, 6, 8, 16, 3, 1, WIDER_THAN_KERNEL),
];

// ResNet-18's wider 3×3 layers take the cpu reference 3–10 s each, so they run only with
// DECOMPOSE_FULL_PARITY=1; they exercise the same code as the narrower cases above.
const wideCases: ConvCase[] = [
  conv('resnet18 64→64 s1 @32', 1, 32, 64, 64, 3, 1),
  conv('resnet18 64→128 s2 @32', 1, 32, 64, 128, 3, 2),
  conv('resnet18 128→128 s1 @16', 1, 16, 128, 128, 3, 1),
  conv('resnet18 128→256 s2 @16', 1, 16, 128, 256, 3, 2),
  conv('resnet18 256→256 s1 @8', 1, 8, 256, 256, 3, 1),
  conv('resnet18 256→512 s2 @8', 1, 8, 256, 512, 3, 2),
  conv('resnet18 512→512 s1 @4', 1, 4, 512, 512, 3, 1),
];
/** The conv cases every parity test runs (the wide ResNet-18 ones only with DECOMPOSE_FULL_PARITY=1). */
export const parityCases = process.env.DECOMPOSE_FULL_PARITY === '1' ? [...cases, ...wideCases] : cases;

/** Input, filter and output shapes of a case. */
export function shapesOf(c: ConvCase): { x: Shape4; w: Shape4; y: Shape4 } {
  const x: Shape4 = [c.batch, c.height, c.width ?? c.height, c.inChannels];
  const w: Shape4 = [...c.kernel, c.inChannels, c.outChannels];
  const info = tf.backend_util.computeConv2DInfo(x, w, c.stride, 1, c.pad);
  return { x, w, y: info.outShape };
}

/** `compute` on the wasm backend (with the engine's kernels), then on cpu. */
export async function onWasmAndCpu<T>(compute: () => T): Promise<{ wasm: T; cpu: T }> {
  await initEngine({ backend: 'wasm' });
  const wasm = compute();
  await initEngine({ backend: 'cpu' });
  return { wasm, cpu: compute() };
}
