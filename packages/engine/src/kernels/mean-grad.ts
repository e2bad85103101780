import {
  backend_util,
  broadcastTo,
  div,
  type GradConfig,
  Mean,
  type NamedAttrMap,
  reshape,
  scalar,
  type Tensor,
  util,
} from '@tensorflow/tfjs-core';

/**
 * Gradient of the `Mean` kernel: dy / n spread over the reduced axes. tfjs-core's multiplies by a tensor of
 * ones and then divides, three passes over the input's size; broadcasting the small dy / n is one. Equal
 * to tfjs-core's bit for bit (the same division of the same values). BatchNorm training runs two per layer.
 */
export const meanGradConfig: GradConfig = {
  kernelName: Mean,
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const dyTensor = Array.isArray(dy) ? (dy[0] as Tensor) : dy;
    const [x] = saved as [Tensor];
    const axes = util.parseAxisParam(attrs.axis as number | number[], x.shape);
    const [, reduceShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
    const expandedShape = x.shape.map((size, axis) => (axes.includes(axis) ? 1 : size));
    const scaled = div(reshape(dyTensor, expandedShape), scalar(util.sizeFromShape(reduceShape)));
    return { x: () => broadcastTo(scaled, x.shape) };
  },
};
