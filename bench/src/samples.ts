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

/** Calls of one step timed together: how many, their wall-clock milliseconds, the process's CPU milliseconds. */
export interface TimedCalls {
  calls: number;
  ms: number;
  /** CPU time of the whole process (all threads), for a shared machine where wall time includes waiting. */
  cpu_ms: number;
}

/** Calls `step` until `minMs` of wall time have passed (at least once). */
export async function timeCalls(step: () => Promise<void>, minMs: number): Promise<TimedCalls> {
  let calls = 0;
  let ms = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  do {
    await step();
    calls += 1;
    ms = performance.now() - start;
  } while (ms < minMs);
  const cpu = process.cpuUsage(cpuStart);
  return { calls, ms, cpu_ms: (cpu.user + cpu.system) / 1000 };
}
