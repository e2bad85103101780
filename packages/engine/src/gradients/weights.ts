import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { GradientOptionsError } from './errors.js';

/** Where each of a list of weights lives in one flat float32 buffer. */
export interface WeightLayout {
  /** `originalName` of each weight (stable across copies of a model, unlike `name`). */
  names: string[];
  shapes: number[][];
  /** Start of each weight in the flat buffer, in elements. */
  offsets: number[];
  /** Elements in the whole buffer. */
  size: number;
}

/** The layout of `variables` packed one after another in their order. */
export function layoutOf(variables: readonly LayerVariable[]): WeightLayout {
  const offsets: number[] = [];
  let size = 0;
  for (const variable of variables) {
    if (variable.dtype !== 'float32') {
      throw new GradientOptionsError(
        `Weight '${variable.originalName}' is ${variable.dtype}; gradients are computed for float32 weights only.`,
      );
    }
    offsets.push(size);
    size += tf.util.sizeFromShape(variable.shape as number[]);
  }
  return {
    names: variables.map((variable) => variable.originalName),
    shapes: variables.map((variable) => [...(variable.shape as number[])]),
    offsets,
    size,
  };
}

/** Throws unless two layouts describe the same weights (a model and its copy rebuilt elsewhere). */
export function checkSameLayout(expected: WeightLayout, actual: WeightLayout, what: string): void {
  const describe = (layout: WeightLayout) =>
    layout.names.map((name, i) => `${name}[${layout.shapes[i]?.join(',')}]`).join(' ');
  if (describe(expected) !== describe(actual)) {
    throw new GradientOptionsError(
      `The rebuilt model's ${what} weights differ from the original's (${describe(actual)} vs ${describe(expected)}). ` +
        'Every layer must serialize its full configuration in getConfig().',
    );
  }
}

/** Copies the current values of `variables` into `target` at `layout`'s offsets; true if any value changed. */
export function readWeights(
  variables: readonly LayerVariable[],
  layout: WeightLayout,
  target: Float32Array,
): boolean {
  let changed = false;
  variables.forEach((variable, i) => {
    const values = variable.read().dataSync() as Float32Array;
    const slot = weightView(target, layout, i);
    changed ||= !sameValues(values, slot);
    slot.set(values);
  });
  return changed;
}

/** Whether two arrays of the same length hold the same values (a plain loop: this runs on every weight). */
function sameValues(a: Float32Array, b: Float32Array): boolean {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** Sets `variables` to the values stored in `source` at `layout`'s offsets. */
export function writeWeights(
  variables: readonly LayerVariable[],
  layout: WeightLayout,
  source: Float32Array,
): void {
  for (const [i, variable] of variables.entries()) writeWeight(variable, weightView(source, layout, i));
}

/** Sets one variable to `values` (copied, so the caller may reuse the array). */
export function writeWeight(variable: LayerVariable, values: Float32Array): void {
  const value = tf.tensor(values.slice(), variable.shape as number[], 'float32');
  variable.write(value);
  value.dispose();
}

/** The part of a flat buffer that holds weight `index`. */
export function weightView(buffer: Float32Array, layout: WeightLayout, index: number): Float32Array {
  const offset = layout.offsets[index] ?? 0;
  return buffer.subarray(offset, offset + tf.util.sizeFromShape(layout.shapes[index] ?? []));
}
