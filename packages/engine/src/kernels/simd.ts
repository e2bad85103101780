import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import {
  RELAXED_SIMD_MODULE_BASE64,
  SHARED_RELAXED_SIMD_MODULE_BASE64,
  SHARED_SIMD_MODULE_BASE64,
  SIMD_MODULE_BASE64,
} from './simd-module.js';
import type { WasmBackend } from './wasm-backend.js';

// The engine's SIMD kernels (native/simd.c) run on the wasm backend's own memory, so they read and write tensors
// in place: 4-5× faster than the same loops in JavaScript on heap views.

// The WebAssembly API, typed here because the project compiles without the DOM library.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WebAssemblyApi {
  Memory: abstract new (...args: never[]) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  validate(bytes: Uint8Array): boolean;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { exports: Record<string, unknown> };
}
const webAssembly = (globalThis as unknown as { WebAssembly?: WebAssemblyApi }).WebAssembly;

/** A convolution's input [N, H, W, C_in] and output [Ho, Wo, C_out], as the kernels take them. */
type ConvShape = [
  batch: number,
  height: number,
  width: number,
  inChannels: number,
  outHeight: number,
  outWidth: number,
  outChannels: number,
];

/**
 * What both convolution-gradient kernels take after their three tensor pointers: the shape, the kernel size,
 * the strides and the top/left padding.
 */
type ConvGeometry = [...ConvShape, ...WindowParams];

/** A window's size, strides and top/left padding, as the convolution and pool kernels take them. */
type WindowParams = [kh: number, kw: number, sh: number, sw: number, padTop: number, padLeft: number];
type ConvGradientKernel = (first: number, second: number, out: number, ...geometry: ConvGeometry) => void;

/**
 * One output phase of an input gradient (see `conv2dInputGradPhases`): the dx positions at rows ≡ dxRow (mod sh)
 * and columns ≡ dxColumn (mod sw), from the taps that reach them.
 */
export interface InputGradPhase {
  /** The phase's taps, spatially flipped, channels swapped: [th, tw, C_out, C_in]. */
  taps: TensorInfo;
  /** Where its first output's first tap reads the padded dy. */
  firstRow: number;
  firstColumn: number;
  /** Its output positions. */
  rows: number;
  columns: number;
  /** Its first dx position. */
  dxRow: number;
  dxColumn: number;
}

/** Zero rows and columns around dy that every phase's taps stay inside. */
export interface PhasePadding {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** The input's [N, H, W, C] and the output's [Ho, Wo]: how the window kernels (pools, depthwise) start their shape. */
export type WindowShape = [
  batch: number,
  height: number,
  width: number,
  channels: number,
  outHeight: number,
  outWidth: number,
];

/** What the average-pool gradient takes after its tensors. */
type PoolGeometry = [...WindowShape, ...WindowParams];

/**
 * What both depthwise-gradient kernels take after their tensor and scratch pointers: the input's [N, H, W, C], the
 * output's [Ho, Wo], the channel multiplier M, the kernel size, the strides, the top/left padding and the
 * dilations.
 */
export type DepthwiseGeometry = [
  ...WindowShape,
  multiplier: number,
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  padTop: number,
  padLeft: number,
  dh: number,
  dw: number,
];

interface SimdExports {
  conv2d_input_grad_phases(
    dy: number,
    phases: number,
    phaseCount: number,
    dx: number,
    padded: number,
    batch: number,
    dyHeight: number,
    dyWidth: number,
    outChannels: number,
    height: number,
    width: number,
    inChannels: number,
    sh: number,
    sw: number,
    padTop: number,
    padLeft: number,
    paddedHeight: number,
    paddedWidth: number,
  ): void;
  conv2d_filter_grad: ConvGradientKernel;
  depthwise_input_grad(
    dy: number,
    w: number,
    dx: number,
    scratch: number,
    taps: number,
    ...g: DepthwiseGeometry
  ): void;
  depthwise_filter_grad(x: number, dy: number, dw: number, acc: number, ...g: DepthwiseGeometry): void;
  conv2d_forward(
    x: number,
    w: number,
    wT: number,
    bias: number,
    y: number,
    padded: number,
    ...rest: [...ConvGeometry, activation: number]
  ): void;
  conv2d_winograd(
    x: number,
    w: number,
    bias: number,
    y: number,
    u: number,
    padded: number,
    v: number,
    m: number,
    ...rest: [...ConvShape, padTop: number, padLeft: number, chunkTiles: number, activation: number]
  ): void;
  conv2d_filter_grad_winograd(
    x: number,
    dy: number,
    dw: number,
    m: number,
    padded: number,
    v: number,
    d: number,
    ...rest: [...ConvShape, padTop: number, padLeft: number, chunkTiles: number]
  ): void;
  masked_grad(
    dy: number,
    x: number,
    out: number,
    n: number,
    low: number,
    high: number,
    lowOpen: number,
  ): void;
  copy_rows(source: number, from: number, target: number, to: number, rows: number): void;
  avg_pool_grad(dy: number, dx: number, ...rest: [...PoolGeometry, scale: number]): void;
  matmul_small_right(
    a: number,
    b: number,
    bias: number,
    out: number,
    rows: number,
    depth: number,
    columns: number,
    activation: number,
  ): void;
  channel_moments(x: number, w: number, n: number, channels: number, acc: number): void;
  channel_affine(
    out: number,
    a: number,
    p: number,
    b: number,
    q: number,
    r: number,
    n: number,
    channels: number,
    relu: number,
  ): void;
}

/** What the kernels need of the emscripten module behind the wasm backend. */
interface EmscriptenModule {
  /** The memory the single-threaded builds export. */
  asm?: { memory?: WasmMemory };
  /** The shared memory the threaded build creates and hands its pthreads. */
  wasmMemory?: WasmMemory;
  _malloc(bytes: number): number;
  _free(pointer: number): void;
}

interface BackendInternals {
  wasm: EmscriptenModule;
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

const instances = new WeakMap<object, SimdKernels | null>();

/** The two builds of native/simd.c: relaxed SIMD (fused multiply-add) and plain SIMD128. */
export type SimdBuild = 'relaxed' | 'simd128';

/** Each build for a private memory and for the shared memory of tfjs's threaded build, base64. */
const SIMD_MODULES: Record<'private' | 'shared', Record<SimdBuild, string>> = {
  private: { relaxed: RELAXED_SIMD_MODULE_BASE64, simd128: SIMD_MODULE_BASE64 },
  shared: { relaxed: SHARED_RELAXED_SIMD_MODULE_BASE64, simd128: SHARED_SIMD_MODULE_BASE64 },
};

function relaxedSimdWanted(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.DECOMPOSE_RELAXED_SIMD !== '0';
}

/**
 * Node 20's V8 compiles relaxed SIMD only behind a flag (Node 22 and Chrome 114 on have it by default). The flag
 * only lets the compiler accept those instructions, so turning it on at run time, before our module is compiled,
 * is safe; elsewhere (a browser, an older Node without `getBuiltinModule`) this does nothing.
 */
function allowRelaxedSimd(): void {
  const node = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const v8 = node?.getBuiltinModule?.('node:v8') as { setFlagsFromString(flag: string): void } | undefined;
  v8?.setFlagsFromString('--experimental-wasm-relaxed-simd');
}

function decodeBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

/** Per-channel sums of a [..., C] tensor in float64: Σ w and Σ w·x (w = x when `weights` is null). */
export interface ChannelMoments {
  sum: Float64Array;
  products: Float64Array;
}

/** {@link ConvGeometry} of a convolution from `x` ([N, H, W, C_in]) to `y` ([N, Ho, Wo, C_out]). */
function convGeometry(
  x: TensorInfo,
  y: TensorInfo,
  kh: number,
  kw: number,
  strides: [number, number],
  padTop: number,
  padLeft: number,
): ConvGeometry {
  const [batch, height, width, inChannels] = x.shape as [number, number, number, number];
  const [, outHeight, outWidth, outChannels] = y.shape as [number, number, number, number];
  return [
    batch,
    height,
    width,
    inChannels,
    outHeight,
    outWidth,
    outChannels,
    kh,
    kw,
    ...strides,
    padTop,
    padLeft,
  ];
}

/** Activations the forward kernels apply as they write their output. */
export type SimdActivation = 'linear' | 'relu';

const ACTIVATION_CODES: Record<SimdActivation, number> = { linear: 0, relu: 1 };

/**
 * Tiles (2×2 outputs) per chunk of the Winograd convolution: a chunk's transforms stay in L1 cache between the
 * input transform, the 16 products and the output transform (4 was fastest of 4-256 on every CIFAR ResNet shape).
 */
const WINOGRAD_CHUNK_TILES = 4;

/**
 * Tiles per chunk of the Winograd filter gradient: its products add into the 16·C_in·C_out sums once per chunk,
 * so longer chunks pay that load and store less often; 16 was the best of 8, 16, 32 and 64 at 16→16.
 */
const WINOGRAD_FILTER_GRAD_CHUNK_TILES = 16;

/** What both Winograd kernels take after their tensor pointers (see `withWinogradScratch`). */
interface WinogradScratch {
  /** Heap addresses: the 16 positions' channel pairs, the padded image, a chunk's input and output tiles. */
  buffers: [pairs: number, padded: number, inputTiles: number, outputTiles: number];
  shape: ConvShape;
  chunkTiles: number;
}

/** `n` rounded up to a whole number of SIMD vectors (4 floats). */
const wholeVectors = (n: number) => Math.ceil(n / 4) * 4;

/**
 * Whether a filter gradient runs as Winograd's F(3×3, 2×2): 3×3, stride 1, input channels in whole vectors, at
 * least 8 (as for the forward), and outputs in groups of 16: 1.2–1.4× the direct kernel at 16→16, 32→32, 64→64
 * and 32→16 (batch 128), but 0.6× at 16→8, where its products run one vector of outputs per block.
 */
export function winogradFilterGradApplies(
  kh: number,
  kw: number,
  strides: [number, number],
  inChannels: number,
  outChannels: number,
): boolean {
  return (
    kh === 3 &&
    kw === 3 &&
    strides[0] === 1 &&
    strides[1] === 1 &&
    inChannels % 4 === 0 &&
    inChannels >= 8 &&
    outChannels % 16 === 0
  );
}

/** The SIMD kernels bound to one wasm backend. */
export class SimdKernels {
  private constructor(
    /** Which build of native/simd.c runs. */
    readonly variant: SimdBuild,
    /** Whether it runs on a shared memory (tfjs's threaded build). */
    readonly sharedMemory: boolean,
    private readonly module: EmscriptenModule,
    private readonly memory: WasmMemory,
    private readonly exports: SimdExports,
    private readonly dataIdMap: BackendInternals['dataIdMap'],
  ) {}

  /**
   * The kernels for `backend`, or null where they cannot run (no wasm SIMD, or a backend build that does not
   * expose its memory): callers then use their JavaScript loops. The relaxed-SIMD build where the runtime
   * compiles it (fused multiply-adds: a quarter fewer instructions on a ResNet's convolutions), unless
   * `DECOMPOSE_RELAXED_SIMD=0` (results then do not depend on whether the machine has FMA); else SIMD128.
   */
  static of(backend: WasmBackend): SimdKernels | null {
    const cached = instances.get(backend);
    if (cached !== undefined) return cached;
    const kernels =
      (relaxedSimdWanted() ? SimdKernels.build(backend, 'relaxed') : null) ??
      SimdKernels.build(backend, 'simd128');
    instances.set(backend, kernels);
    return kernels;
  }

  /** A fresh instance of one build for `backend` (uncached: tests compare the two), or null where it cannot run. */
  static build(backend: WasmBackend, build: SimdBuild): SimdKernels | null {
    const internals = backend as unknown as Partial<BackendInternals>;
    const memory = internals.wasm?.asm?.memory ?? internals.wasm?.wasmMemory;
    if (!webAssembly || !internals.wasm || !internals.dataIdMap || !(memory instanceof webAssembly.Memory)) {
      return null;
    }
    // A module imports a shared memory only if it declares one: the threaded build needs the shared builds.
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const bytes = decodeBase64(SIMD_MODULES[shared ? 'shared' : 'private'][build]);
    if (build === 'relaxed' && !webAssembly.validate(bytes)) {
      allowRelaxedSimd();
      if (!webAssembly.validate(bytes)) return null;
    }
    try {
      const instance = new webAssembly.Instance(new webAssembly.Module(bytes), { env: { memory } });
      return new SimdKernels(
        build,
        shared,
        internals.wasm,
        memory,
        instance.exports as unknown as SimdExports,
        internals.dataIdMap,
      );
    } catch {
      return null; // no SIMD in this engine (WebAssembly.Module throws a CompileError)
    }
  }

  private offset(info: TensorInfo): number {
    const data = this.dataIdMap.get(info.dataId);
    if (data === undefined) throw new Error('SimdKernels: tensor is not on this wasm backend');
    return data.memoryOffset;
  }

  /** Runs `use` with `bytes` of scratch memory on the wasm heap (freed afterwards). */
  private withScratch<T>(bytes: number, use: (pointer: number) => T): T {
    const pointer = this.module._malloc(bytes);
    try {
      return use(pointer);
    } finally {
      this.module._free(pointer);
    }
  }

  /** Per-channel Σ w and Σ w·x of float32 `x` (and `weights`, of x's size), in float64. */
  channelMoments(x: TensorInfo, weights: TensorInfo | null, channels: number): ChannelMoments {
    const n = x.shape.reduce((a, b) => a * b, 1);
    return this.withScratch(16 * channels, (acc) => {
      new Float64Array(this.memory.buffer, acc, 2 * channels).fill(0);
      this.exports.channel_moments(
        this.offset(x),
        weights === null ? 0 : this.offset(weights),
        n,
        channels,
        acc,
      );
      const totals = new Float64Array(this.memory.buffer, acc, 2 * channels);
      return { sum: totals.slice(0, channels), products: totals.slice(channels) };
    });
  }

  /**
   * out = a·p + b·q + r per channel (without the b term when `b` is null: then relu'd with `relu`); all float32 of
   * one shape.
   */
  channelAffine(
    out: TensorInfo,
    a: TensorInfo,
    p: Float32Array,
    b: TensorInfo | null,
    q: Float32Array,
    r: Float32Array,
    relu = false,
  ): void {
    const channels = p.length;
    const n = out.shape.reduce((x, y) => x * y, 1);
    this.withScratch(12 * channels, (vectors) => {
      const heap = new Float32Array(this.memory.buffer, vectors, 3 * channels);
      heap.set(p, 0);
      heap.set(q, channels);
      heap.set(r, 2 * channels);
      this.exports.channel_affine(
        this.offset(out),
        this.offset(a),
        vectors,
        b === null ? 0 : this.offset(b),
        vectors + 4 * channels,
        vectors + 8 * channels,
        n,
        channels,
        relu ? 1 : 0,
      );
    });
  }

  /**
   * Overwrites `dw` ([kh, kw, C_in, C_out]) with the filter gradient of a stride-(sh, sw) convolution of `x`
   * ([N, H, W, C_in]) whose output gradient is `dy` ([N, Ho, Wo, C_out]), padded by `padTop`/`padLeft` before
   * the first row/column. C_out not a multiple of 4 runs on a copy of dy padded with zero channels to one.
   */
  conv2dFilterGrad(
    x: TensorInfo,
    dy: TensorInfo,
    dw: TensorInfo,
    strides: [number, number],
    padTop: number,
    padLeft: number,
  ): void {
    const [kh, kw, inChannels, outChannels] = dw.shape as [number, number, number, number];
    if (winogradFilterGradApplies(kh, kw, strides, inChannels, outChannels)) {
      this.winogradFilterGrad(x, dy, dw, padTop, padLeft);
      return;
    }
    const geometry = convGeometry(x, dy, kh, kw, strides, padTop, padLeft);
    if (outChannels % 4 === 0) {
      this.exports.conv2d_filter_grad(this.offset(x), this.offset(dy), this.offset(dw), ...geometry);
      return;
    }
    const padded = wholeVectors(outChannels);
    const pixels = dy.shape.reduce((a, b) => a * b, 1) / outChannels;
    const taps = kh * kw * inChannels;
    geometry[6] = padded;
    this.withScratch(4 * padded * (pixels + taps), (dyAt) => {
      const dwAt = dyAt + 4 * padded * pixels;
      this.exports.copy_rows(this.offset(dy), outChannels, dyAt, padded, pixels);
      this.exports.conv2d_filter_grad(this.offset(x), dyAt, dwAt, ...geometry);
      this.exports.copy_rows(dwAt, padded, this.offset(dw), outChannels, taps);
    });
  }

  /** {@link conv2dFilterGrad} by Winograd's F(3×3, 2×2), where {@link winogradFilterGradApplies}. */
  private winogradFilterGrad(
    x: TensorInfo,
    dy: TensorInfo,
    dw: TensorInfo,
    padTop: number,
    padLeft: number,
  ): void {
    const [, outHeight, outWidth, outChannels] = dy.shape as [number, number, number, number];
    this.withWinogradScratch(
      x,
      outHeight,
      outWidth,
      outChannels,
      WINOGRAD_FILTER_GRAD_CHUNK_TILES,
      (scratch) => {
        this.exports.conv2d_filter_grad_winograd(
          this.offset(x),
          this.offset(dy),
          this.offset(dw),
          ...scratch.buffers,
          ...scratch.shape,
          padTop,
          padLeft,
          scratch.chunkTiles,
        );
      },
    );
  }

  /**
   * Runs `use` with the scratch both Winograd kernels take, one allocation: 16·C_in·C_out floats for the 16
   * positions' channel pairs (the forward's transformed filter, the filter gradient's sums), the zero-padded image,
   * then 16 planes of a chunk of tiles for C_in and for C_out (chunks of up to `maxChunkTiles`).
   */
  private withWinogradScratch(
    x: TensorInfo,
    outHeight: number,
    outWidth: number,
    outChannels: number,
    maxChunkTiles: number,
    use: (scratch: WinogradScratch) => void,
  ): void {
    const inChannels = x.shape[3] as number;
    const tilesHigh = Math.ceil(outHeight / 2);
    const tilesWide = Math.ceil(outWidth / 2);
    const chunkTiles = Math.min(tilesHigh * tilesWide, maxChunkTiles);
    const pairFloats = 16 * inChannels * outChannels;
    const paddedFloats = (2 * tilesHigh + 2) * (2 * tilesWide + 2) * inChannels;
    const inputFloats = 16 * chunkTiles * inChannels;
    const outputFloats = 16 * chunkTiles * outChannels;
    this.withScratch(4 * (pairFloats + paddedFloats + inputFloats + outputFloats), (pairs) => {
      const padded = pairs + 4 * pairFloats;
      const inputTiles = padded + 4 * paddedFloats;
      const [batch, height, width] = x.shape as [number, number, number, number];
      use({
        buffers: [pairs, padded, inputTiles, inputTiles + 4 * inputFloats],
        shape: [batch, height, width, inChannels, outHeight, outWidth, outChannels],
        chunkTiles,
      });
    });
  }

  /** Overwrites `out` with `dy` where `x` is in [low, high] (low excluded when `lowOpen`), else 0; all one size. */
  maskedGrad(
    dy: TensorInfo,
    x: TensorInfo,
    out: TensorInfo,
    low: number,
    high: number,
    lowOpen: boolean,
  ): void {
    const n = x.shape.reduce((a, b) => a * b, 1);
    this.exports.masked_grad(
      this.offset(dy),
      this.offset(x),
      this.offset(out),
      n,
      low,
      high,
      lowOpen ? 1 : 0,
    );
  }

  /** Overwrites `dx` with the input gradient of the average pool `info` whose output gradient is `dy`. */
  avgPoolGrad(dy: TensorInfo, dx: TensorInfo, info: backend_util.Conv2DInfo): void {
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, padInfo } = info;
    const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
    this.exports.avg_pool_grad(
      this.offset(dy),
      this.offset(dx),
      ...([
        batchSize,
        inHeight,
        inWidth,
        inChannels,
        outHeight,
        outWidth,
        filterHeight,
        filterWidth,
        strideHeight,
        strideWidth,
        padInfo.top,
        padInfo.left,
      ] satisfies PoolGeometry),
      1 / (filterHeight * filterWidth),
    );
  }

  /**
   * Overwrites `dx` ([N, H, W, C]) with the input gradient of a depthwise convolution with `filter` ([kh, kw, C, M])
   * whose output gradient is `dy` ([N, Ho, Wo, C·M]).
   */
  depthwiseInputGrad(dy: TensorInfo, filter: TensorInfo, dx: TensorInfo, geometry: DepthwiseGeometry): void {
    const [, , , channels, , , multiplier, kh, kw] = geometry;
    const scratchFloats = multiplier > 1 ? channels * multiplier : 0;
    this.withScratch(4 * (scratchFloats + 2 * (kh + kw)), (scratch) => {
      const taps = scratch + 4 * scratchFloats;
      this.exports.depthwise_input_grad(
        this.offset(dy),
        this.offset(filter),
        this.offset(dx),
        scratch,
        taps,
        ...geometry,
      );
    });
  }

  /**
   * Overwrites `dw` ([kh, kw, C, M]) with the filter gradient of a depthwise convolution of `x` ([N, H, W, C]) whose
   * output gradient is `dy` ([N, Ho, Wo, C·M]); sums in float64.
   */
  depthwiseFilterGrad(x: TensorInfo, dy: TensorInfo, dw: TensorInfo, geometry: DepthwiseGeometry): void {
    const size = dw.shape.reduce((a, b) => a * b, 1);
    this.withScratch(8 * size, (acc) => {
      this.exports.depthwise_filter_grad(this.offset(x), this.offset(dy), this.offset(dw), acc, ...geometry);
    });
  }

  /**
   * Overwrites the positions of `dx` ([N, H, W, C_in]; C_in a multiple of 4) that `phases` cover with the input
   * gradient of a convolution whose output gradient is `dy` ([N, Ho, Wo, C_out]), phase by phase: each a stride-1
   * convolution of dy (padded by `pad`) with the phase's taps, written into every `strides`-th row and column.
   */
  conv2dInputGradPhases(
    dy: TensorInfo,
    dx: TensorInfo,
    phases: readonly InputGradPhase[],
    strides: [number, number],
    pad: PhasePadding,
  ): void {
    const [batch, dyHeight, dyWidth, outChannels] = dy.shape as [number, number, number, number];
    const [, height, width, inChannels] = dx.shape as [number, number, number, number];
    const paddedHeight = dyHeight + pad.top + pad.bottom;
    const paddedWidth = dyWidth + pad.left + pad.right;
    const paddedFloats =
      pad.top + pad.bottom + pad.left + pad.right > 0 ? paddedHeight * paddedWidth * outChannels : 0;
    this.withScratch(4 * (paddedFloats + 9 * phases.length), (padded) => {
      const table = padded + 4 * paddedFloats;
      new Int32Array(this.memory.buffer, table, 9 * phases.length).set(
        phases.flatMap((p) => [
          p.taps.shape[0] as number,
          p.taps.shape[1] as number,
          p.firstRow,
          p.firstColumn,
          p.rows,
          p.columns,
          p.dxRow,
          p.dxColumn,
          this.offset(p.taps),
        ]),
      );
      this.exports.conv2d_input_grad_phases(
        this.offset(dy),
        table,
        phases.length,
        this.offset(dx),
        padded,
        batch,
        dyHeight,
        dyWidth,
        outChannels,
        height,
        width,
        inChannels,
        strides[0],
        strides[1],
        pad.top,
        pad.left,
        paddedHeight,
        paddedWidth,
      );
    });
  }

  /**
   * Overwrites `y` ([N, Ho, Wo, C_out]) with act(conv(x, filter) + bias), dilation 1: `x` [N, H, W, C_in],
   * `filter` [kh, kw, C_in, C_out] (kh ≤ 16), `bias` [C_out] or null. `lanes` (C_in a multiple of 4, C_out too):
   * multiply vectors of 4 input channels and sum across lanes at the end, for few outputs from many inputs;
   * else broadcast each input value to vectors of output channels. C_out not a multiple of 4 runs padded with
   * zero filters to one, on scratch memory.
   */
  conv2d(
    x: TensorInfo,
    filter: TensorInfo,
    bias: TensorInfo | null,
    y: TensorInfo,
    strides: [number, number],
    padTop: number,
    padLeft: number,
    activation: SimdActivation,
    lanes: boolean,
  ): void {
    const [kh, kw, inChannels, outChannels] = filter.shape as [number, number, number, number];
    const geometry = convGeometry(x, y, kh, kw, strides, padTop, padLeft);
    const [, height, width, , outHeight, outWidth] = geometry;
    // Where taps fall outside x, the kernel convolves a zero-padded copy of each image in turn.
    const paddedHeight = (outHeight - 1) * strides[0] + kh;
    const paddedWidth = (outWidth - 1) * strides[1] + kw;
    const paddedFloats =
      padTop === 0 && padLeft === 0 && paddedHeight <= height && paddedWidth <= width
        ? 0
        : paddedHeight * paddedWidth * inChannels;
    const run = (filterAt: number, filterByLanes: number, biasAt: number, yAt: number, channels: number) => {
      geometry[6] = channels;
      const convolve = (paddedAt: number) =>
        this.exports.conv2d_forward(
          this.offset(x),
          filterAt,
          filterByLanes,
          biasAt,
          yAt,
          paddedAt,
          ...geometry,
          ACTIVATION_CODES[activation],
        );
      if (paddedFloats === 0) convolve(0);
      else this.withScratch(4 * paddedFloats, convolve);
    };
    const biasAt = bias === null ? 0 : this.offset(bias);
    if (outChannels % 4 !== 0) {
      this.withWholeVectorOutputs(filter, bias, y, (filterAt, paddedBiasAt, yAt, channels) =>
        run(filterAt, 0, paddedBiasAt, yAt, channels),
      );
      return;
    }
    if (!lanes) {
      run(this.offset(filter), 0, biasAt, this.offset(y), outChannels);
      return;
    }
    if (inChannels % 4 !== 0) throw new Error(`conv2d: lanes need C_in a multiple of 4, got ${inChannels}`);
    // The lanes kernel reads the filter as [C_out / 4, kh, 4, kw·C_in]: per group of 4 outputs and filter row,
    // each output's taps contiguous.
    const size = kh * kw * inChannels * outChannels;
    const tapsRow = kw * inChannels;
    this.withScratch(4 * size, (filterByLanes) => {
      const source = new Float32Array(this.memory.buffer, this.offset(filter), size);
      const target = new Float32Array(this.memory.buffer, filterByLanes, size);
      for (let a = 0; a < kh; a++) {
        for (let t = 0; t < tapsRow; t++) {
          const from = (a * tapsRow + t) * outChannels;
          for (let o = 0; o < outChannels; o++) {
            const lane = o & 3;
            target[((o - lane) * kh + a * 4 + lane) * tapsRow + t] = source[from + o] as number;
          }
        }
      }
      run(this.offset(filter), filterByLanes, biasAt, this.offset(y), outChannels);
    });
  }

  /**
   * Runs `run` on copies of `filter` ([..., C_out]), `bias` ([C_out] or null) and `y` ([..., C_out]) padded with
   * zero channels to whole vectors (pointers, and the padded channel count), then copies the output back into `y`:
   * how the SIMD convolutions take a C_out that is not a multiple of 4.
   */
  private withWholeVectorOutputs(
    filter: TensorInfo,
    bias: TensorInfo | null,
    y: TensorInfo,
    run: (filterAt: number, biasAt: number, yAt: number, channels: number) => void,
  ): void {
    const outChannels = filter.shape[filter.shape.length - 1] as number;
    const padded = wholeVectors(outChannels);
    const taps = filter.shape.reduce((a, b) => a * b, 1) / outChannels;
    const pixels = y.shape.reduce((a, b) => a * b, 1) / outChannels;
    this.withScratch(4 * padded * (taps + 1 + pixels), (filterAt) => {
      const biasAt = filterAt + 4 * padded * taps;
      const yAt = biasAt + 4 * padded;
      this.exports.copy_rows(this.offset(filter), outChannels, filterAt, padded, taps);
      if (bias !== null) this.exports.copy_rows(this.offset(bias), outChannels, biasAt, padded, 1);
      run(filterAt, bias === null ? 0 : biasAt, yAt, padded);
      this.exports.copy_rows(yAt, padded, this.offset(y), outChannels, pixels);
    });
  }

  /**
   * Overwrites `y` ([N, Ho, Wo, C_out]) with act(conv(x, filter) + bias) by Winograd's F(2×2, 3×3): `filter`
   * [3, 3, C_in, C_out], stride 1, dilation 1, C_in a multiple of 4, `bias` [C_out] or null (C_out not a multiple
   * of 4 runs padded with zero filters to one). 2.25× fewer multiplies than {@link conv2d}; results differ from it
   * by rounding only (the transforms add and halve).
   */
  conv2dWinograd(
    x: TensorInfo,
    filter: TensorInfo,
    bias: TensorInfo | null,
    y: TensorInfo,
    padTop: number,
    padLeft: number,
    activation: SimdActivation,
  ): void {
    const inChannels = x.shape[3] as number;
    const [, outHeight, outWidth, outChannels] = y.shape as [number, number, number, number];
    if (inChannels % 4 !== 0 || filter.shape[0] !== 3 || filter.shape[1] !== 3) {
      throw new Error(
        `conv2dWinograd: needs a 3×3 filter from a multiple of 4 channels, got ${filter.shape.join('×')}`,
      );
    }
    if (outChannels % 4 !== 0) {
      this.withWholeVectorOutputs(filter, bias, y, (filterAt, biasAt, yAt, channels) =>
        this.winograd(x, filterAt, biasAt, yAt, outHeight, outWidth, channels, padTop, padLeft, activation),
      );
      return;
    }
    this.winograd(
      x,
      this.offset(filter),
      bias === null ? 0 : this.offset(bias),
      this.offset(y),
      outHeight,
      outWidth,
      outChannels,
      padTop,
      padLeft,
      activation,
    );
  }

  private winograd(
    x: TensorInfo,
    filterAt: number,
    biasAt: number,
    yAt: number,
    outHeight: number,
    outWidth: number,
    outChannels: number,
    padTop: number,
    padLeft: number,
    activation: SimdActivation,
  ): void {
    this.withWinogradScratch(x, outHeight, outWidth, outChannels, WINOGRAD_CHUNK_TILES, (scratch) => {
      this.exports.conv2d_winograd(
        this.offset(x),
        filterAt,
        biasAt,
        yAt,
        ...scratch.buffers,
        ...scratch.shape,
        padTop,
        padLeft,
        scratch.chunkTiles,
        ACTIVATION_CODES[activation],
      );
    });
  }

  /**
   * Overwrites `out` ([rows, columns], columns a multiple of 4) with act(a·b + bias) for `a` [rows, depth] and a
   * small `b` [depth, columns] (it is re-read for every pair of rows); `bias` [columns] or null.
   */
  matMulSmallRight(
    a: TensorInfo,
    b: TensorInfo,
    bias: TensorInfo | null,
    out: TensorInfo,
    activation: SimdActivation,
  ): void {
    const [depth, columns] = b.shape.slice(-2) as [number, number];
    const rows = a.shape.reduce((x, y) => x * y, 1) / depth;
    this.exports.matmul_small_right(
      this.offset(a),
      this.offset(b),
      bias === null ? 0 : this.offset(bias),
      this.offset(out),
      rows,
      depth,
      columns,
      ACTIVATION_CODES[activation],
    );
  }

  /**
   * Overwrites `out` ([depth, columns], columns a multiple of 4) with aᵀ·b for `a` [rows, depth] and `b`
   * [rows, columns]: the filter gradient of a 1×1 convolution over the rows seen as an image of short rows, so
   * each register block's pass covers rows that are still in cache (one row of 8,192 pixels: 1.5 ms at 32 × 64
   * outputs, rows of 64: 0.64 ms).
   */
  matMulTransposedLeft(a: TensorInfo, b: TensorInfo, out: TensorInfo): void {
    const [depth, columns] = out.shape.slice(-2) as [number, number];
    const rows = a.shape.reduce((x, y) => x * y, 1) / depth;
    const width = cacheRowWidth(rows);
    const height = rows / width;
    this.exports.conv2d_filter_grad(
      this.offset(a),
      this.offset(b),
      this.offset(out),
      ...([1, height, width, depth, height, width, columns, 1, 1, 1, 1, 0, 0] satisfies ConvGeometry),
    );
  }
}

/** The widest row of at most 64 pixels that divides `rows` evenly (at least 16), else `rows` itself. */
function cacheRowWidth(rows: number): number {
  for (let width = 64; width >= 16; width--) if (rows % width === 0) return width;
  return rows;
}
