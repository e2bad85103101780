import {
  type DataType,
  getKernel,
  type KernelBackend,
  type KernelConfig,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  type TensorInfo,
  type TypedArray,
} from '@tensorflow/tfjs-core';
import { EngineError } from '../errors.js';

/**
 * The part of tfjs-backend-wasm's `BackendWasm` the engine's kernels use: they allocate outputs on the wasm
 * heap, fill small ones from JavaScript, and compose the backend's own XNNPACK kernels.
 */
export interface WasmBackend extends KernelBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): TypedArray;
}

/** Thrown when an engine kernel is asked for something it does not implement. */
export class UnsupportedKernelInputError extends EngineError {
  override name = 'UnsupportedKernelInputError';
  constructor(kernel: string, what: string, fix: string) {
    super(`${kernel}: ${what}. ${fix}`);
  }
}

// The backend's own kernels that engine kernels replaced, so the replacements can fall back to them.
const stockKernels = new Map<string, KernelConfig>();

/** Remembers a backend's own kernel before the engine replaces it (ignores the engine's own configs). */
export function rememberStockKernel(config: KernelConfig, engineConfig: KernelConfig): void {
  if (config !== engineConfig) stockKernels.set(`${config.backendName}/${config.kernelName}`, config);
}

/**
 * Runs one of the wasm backend's own kernels directly (no tape, no engine bookkeeping), so engine kernels can be
 * built from XNNPACK-backed ones. The caller disposes the returned intermediate with {@link release}.
 */
export function runWasmKernel(
  backend: WasmBackend,
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap,
): TensorInfo {
  const kernel = stockKernels.get(`wasm/${kernelName}`) ?? getKernel(kernelName, 'wasm');
  if (kernel === undefined) {
    throw new UnsupportedKernelInputError(
      kernelName,
      'the wasm backend has no such kernel',
      'Check that @tensorflow/tfjs-backend-wasm 4.22.0 is installed.',
    );
  }
  const out = kernel.kernelFunc({ inputs, attrs, backend });
  if (Array.isArray(out)) {
    throw new UnsupportedKernelInputError(
      kernelName,
      'returned several outputs where one was expected',
      'This is a bug in @decompose/engine: please report it.',
    );
  }
  return out;
}

/** Frees an intermediate produced inside an engine kernel. */
export function release(backend: WasmBackend, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}
