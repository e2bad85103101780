/** Process CPU and wall-clock milliseconds of repeated calls of one measured function. */
export interface Samples {
  cpu: number[];
  wall: number[];
}

/** The middle value (the upper one of an even count); NaN when there is none. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? Number.NaN;
}

/**
 * Runs `fn` once and appends its wall-clock and process CPU milliseconds to `samples`. CPU time is the figure to
 * compare on a shared machine: wall time there mostly measures waiting for a core.
 */
export function measure(fn: () => void, samples: Samples): void {
  const wallStart = performance.now();
  const cpuStart = process.cpuUsage();
  fn();
  const cpu = process.cpuUsage(cpuStart);
  samples.wall.push(performance.now() - wallStart);
  samples.cpu.push((cpu.user + cpu.system) / 1000);
}
