import {
  getKernelsForBackend,
  type KernelConfig,
  type KernelFunc,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';

/**
 * A {@link startKernelTimer} label grouping calls by kernel and shapes: the kernel's name, a tab, then each input's
 * shape, the strides and the fused activation (e.g. `FusedConv2D\tx[128,32,32,16] filter[3,3,16,16] s1 relu`).
 */
export function labelByShapes(
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap | undefined,
): string {
  const shapes = Object.entries(inputs).flatMap(([name, info]) =>
    info === undefined ? [] : [`${name}[${info.shape.join(',')}]`],
  );
  const strides = attrs?.strides === undefined ? '' : ` s${String(attrs.strides)}`;
  const activation = typeof attrs?.activation === 'string' ? ` ${attrs.activation}` : '';
  return `${kernelName}\t${shapes.join(' ')}${strides}${activation}`;
}

/** Time spent in one kernel over a measured span. */
export interface KernelTime {
  /** The kernel's name, or what `label` made of the call. */
  kernel: string;
  /** Wall-clock milliseconds. */
  ms: number;
  /** CPU milliseconds of this process (less inflated than wall time when other programs share the cores). */
  cpu_ms: number;
  calls: number;
}

/** Stops timing and restores the backend's kernels; returns kernels by total CPU time, largest first. */
export type StopKernelTimer = () => KernelTime[];

/**
 * Wraps every kernel of `backendName` so its wall time is summed by kernel name. Only outermost calls count:
 * a kernel that runs others (an engine kernel built on Conv2D) is charged their time, so totals add up.
 * Works for synchronous backends (wasm, cpu), where a kernel's work is done when it returns. `label` groups
 * the calls (by default by kernel name; e.g. by name and shapes for a per-layer profile).
 */
export function startKernelTimer(
  backendName: string,
  label: (kernelName: string, inputs: NamedTensorInfoMap, attrs: NamedAttrMap | undefined) => string = (
    name,
  ) => name,
): StopKernelTimer {
  const originals = getKernelsForBackend(backendName);
  const totals = new Map<string, KernelTime>();
  let depth = 0;
  const wrap = (config: KernelConfig): KernelConfig => {
    const kernelFunc: KernelFunc = (args) => {
      depth++;
      const start = performance.now();
      const cpuStart = process.cpuUsage();
      try {
        return config.kernelFunc(args);
      } finally {
        depth--;
        if (depth === 0) {
          const key = label(config.kernelName, args.inputs, args.attrs);
          const entry = totals.get(key) ?? {
            kernel: key,
            ms: 0,
            cpu_ms: 0,
            calls: 0,
          };
          entry.ms += performance.now() - start;
          const cpu = process.cpuUsage(cpuStart);
          entry.cpu_ms += (cpu.user + cpu.system) / 1000;
          entry.calls++;
          totals.set(key, entry);
        }
      }
    };
    return { ...config, kernelFunc };
  };
  const replace = (configs: KernelConfig[]): void => {
    for (const config of configs) {
      unregisterKernel(config.kernelName, backendName);
      registerKernel(config);
    }
  };
  replace(originals.map(wrap));
  return () => {
    replace(originals);
    return [...totals.values()].sort((a, b) => b.cpu_ms - a.cpu_ms);
  };
}
