import type { TargetLayer } from '@decompose/core';
import { convTarget } from '@decompose/core/testing';
import type { layers } from '@tensorflow/tfjs-layers';

export { relativeDifference } from '@decompose/core/testing';

/** A random square-kernel Conv2D on `size × size` inputs, and the `TargetLayer` surgery makes of it. */
export function randomConv(args: {
  inChannels: number;
  filters: number;
  kernelSize?: number;
  strides?: number;
  padding?: 'same' | 'valid';
  size?: number;
  seed?: number;
}): { layer: layers.Layer; target: TargetLayer } {
  const size = args.size ?? 8;
  const k = args.kernelSize ?? 3;
  const s = args.strides ?? 1;
  const { target } = convTarget(
    {
      inputShape: [size, size, args.inChannels],
      filters: args.filters,
      kernelSize: [k, k],
      strides: [s, s],
      padding: args.padding ?? 'same',
    },
    args.seed ?? 1,
  );
  return { layer: target.layer, target };
}
