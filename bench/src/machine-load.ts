/**
 * How much of the machine this benchmark used, and how much others did, over a window: from Linux's CPU counters
 * (`/proc/stat` for the machine, `/proc/self/stat` for this process and the children it waited for, worker
 * processes and their sandboxed processors included). On a shared machine this says what a timing was taken
 * under, better than a load average, which lags by a minute.
 */
import { readFileSync } from 'node:fs';

/** CPU counters at one moment, in clock ticks. */
export interface CpuCounters {
  /** The machine's ticks, all CPUs: busy (user, nice, system, irq, softirq), idle (with iowait), stolen. */
  busy: number;
  idle: number;
  steal: number;
  /** This process's ticks and those of the children it reaped (utime + stime + cutime + cstime). */
  ours: number;
}

/** The counters now; null where `/proc` cannot be read (not Linux). */
export function cpuCounters(): CpuCounters | null {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
    // The command name (field 2) may hold spaces: count fields from after its closing parenthesis.
    const self = readFileSync('/proc/self/stat', 'utf8');
    const fields = self
      .slice(self.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // Fields 14-17 of proc(5) (utime, stime, cutime, cstime); `fields` starts at field 3.
    const ours = fields.slice(11, 15).reduce((a, b) => a + b, 0);
    return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal, ours };
  } catch {
    return null;
  }
}

/** Shares of the machine's CPU time over a window (each 0-1; ours + others + idle + stolen = 1). */
export interface CpuShares {
  ours: number;
  others: number;
  idle: number;
  stolen: number;
}

/**
 * The shares between two readings. `ours` counts children only once they have exited and been waited for:
 * take `after` once the worker processes are gone.
 */
export function cpuShares(before: CpuCounters | null, after: CpuCounters | null): CpuShares | null {
  if (before === null || after === null) return null;
  const busy = after.busy - before.busy;
  const idle = after.idle - before.idle;
  const steal = after.steal - before.steal;
  const total = busy + idle + steal;
  if (total <= 0) return null;
  const ours = Math.min(after.ours - before.ours, busy);
  return { ours: ours / total, others: (busy - ours) / total, idle: idle / total, stolen: steal / total };
}
