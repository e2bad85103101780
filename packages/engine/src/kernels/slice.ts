import {
  type KernelConfig,
  type KernelFunc,
  Slice,
  type SliceAttrs,
  slice_util,
  type TensorInfo,
  util,
} from '@tensorflow/tfjs-core';
import { runWasmKernel, type WasmBackend } from './wasm-backend.js';

/**
 * `Slice` of float32 tensors copying whole contiguous runs (the sliced innermost axis together with every full
 * axis after it) straight from the heap. The wasm backend's own copies the entire input first and then one
 * innermost row at a time: 10× slower for the crops that padding gradients (`ZeroPadding2D`) run.
 */
const slice: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as WasmBackend;
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype !== 'float32') return runWasmKernel(wasm, Slice, inputs, attrs ?? {});
  const { begin: beginAttr, size: sizeAttr } = attrs as unknown as SliceAttrs;
  const [begin, size] = slice_util.parseSliceParams(x, beginAttr, sizeAttr) as [number[], number[]];
  const out = wasm.makeOutput(size, 'float32');
  const total = util.sizeFromShape(size);
  if (total === 0) return out;
  const strides = [...util.computeStrides(x.shape), 1];
  // The last axis that is not copied whole: everything from it inwards is one contiguous run.
  let axis = x.shape.length - 1;
  while (axis > 0 && begin[axis] === 0 && size[axis] === x.shape[axis]) axis--;
  const run = (size[axis] as number) * (strides[axis] as number);
  const source = wasm.typedArrayFromHeap(x);
  const target = wasm.typedArrayFromHeap(out);
  const index = new Array<number>(axis).fill(0);
  for (let written = 0; written < total; written += run) {
    let from = (begin[axis] as number) * (strides[axis] as number);
    for (let d = 0; d < axis; d++)
      from += ((begin[d] as number) + (index[d] as number)) * (strides[d] as number);
    target.set(source.subarray(from, from + run), written);
    for (let d = axis - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      if ((index[d] as number) < (size[d] as number)) break;
      index[d] = 0;
    }
  }
  return out;
};

/** {@link slice} for the wasm backend (other dtypes go to the backend's own kernel). */
export const wasmSliceConfig: KernelConfig = { kernelName: Slice, backendName: 'wasm', kernelFunc: slice };
