/**
 * Where the time of units run on queue workers goes, from BullMQ's timestamps: per job the dispatch and delivery
 * delays (the queue's own overhead), per worker and phase its busy time and its idle time before its first job,
 * between jobs and after its last one (the tail, while another worker still works).
 */

/** One job's timestamps (ms since the epoch; all taken on this machine, so on one clock). */
export interface JobSpan {
  /** The layer or arm the job computed. */
  label: string;
  /** BullMQ's `processedBy`: the worker that ran it. */
  worker: string;
  /** `timestamp`: added to the queue by the coordinator. */
  enqueuedAt: number;
  /** `processedOn`: taken by the worker. */
  startedAt: number;
  /** `finishedOn`: its result stored. */
  finishedAt: number;
  /** When the coordinator's `onResult` saw the result. */
  seenAt: number;
}

/** A job's queue overhead: the time a free worker waited for it, and its result's way back. */
export interface JobOverhead {
  label: string;
  runMs: number;
  /** Start − the later of its enqueue and the end of that worker's previous job. */
  dispatchMs: number;
  /** Result seen by the coordinator − result stored. */
  deliveryMs: number;
}

/**
 * The overhead of each job (in start order). Dispatch is measured from when the worker was free, not from the
 * enqueue, so that a job waiting behind others (the queue doing its job) is not counted as overhead.
 */
export function jobOverheads(jobs: readonly JobSpan[]): JobOverhead[] {
  const freeSince = new Map<string, number>();
  return [...jobs]
    .sort((a, b) => a.startedAt - b.startedAt)
    .map((job) => {
      const ready = Math.max(job.enqueuedAt, freeSince.get(job.worker) ?? Number.NEGATIVE_INFINITY);
      freeSince.set(job.worker, job.finishedAt);
      return {
        label: job.label,
        runMs: job.finishedAt - job.startedAt,
        dispatchMs: job.startedAt - ready,
        deliveryMs: job.seenAt - job.finishedAt,
      };
    });
}

/** One worker's time in a phase: busy + before first + between + tail = the phase's wall time. */
export interface WorkerTime {
  worker: string;
  jobs: number;
  busyMs: number;
  /** From the phase's start to its first job (the coordinator's work before the first enqueue included). */
  beforeFirstMs: number;
  /** Between the end of one job and the start of its next. */
  betweenMs: number;
  /** From the end of its last job to the end of the phase. */
  tailMs: number;
}

/** A phase of a run (the scan, the arms) as the coordinator timed it, and its workers' time. */
export interface PhaseTime {
  phase: string;
  wallMs: number;
  /** From the phase's start to the first job's enqueue: the coordinator's serial work (null: no job). */
  beforeEnqueueMs: number | null;
  workers: WorkerTime[];
}

/**
 * The time of each of `workers` (names; a worker that ran none of `jobs` is idle for the whole phase) in the
 * phase from `start` to `end`.
 */
export function phaseTime(
  phase: string,
  window: { start: number; end: number },
  jobs: readonly JobSpan[],
  workers: readonly string[],
): PhaseTime {
  const wallMs = window.end - window.start;
  const firstEnqueue = Math.min(...jobs.map((j) => j.enqueuedAt));
  return {
    phase,
    wallMs,
    beforeEnqueueMs: jobs.length === 0 ? null : firstEnqueue - window.start,
    workers: workers.map((worker) => {
      const own = jobs.filter((j) => j.worker === worker).sort((a, b) => a.startedAt - b.startedAt);
      const first = own[0];
      const last = own.at(-1);
      if (first === undefined || last === undefined) {
        return { worker, jobs: 0, busyMs: 0, beforeFirstMs: wallMs, betweenMs: 0, tailMs: 0 };
      }
      let busyMs = 0;
      let betweenMs = 0;
      own.forEach((job, i) => {
        busyMs += job.finishedAt - job.startedAt;
        if (i > 0) betweenMs += job.startedAt - own[i - 1]!.finishedAt;
      });
      return {
        worker,
        jobs: own.length,
        busyMs,
        beforeFirstMs: first.startedAt - window.start,
        betweenMs,
        tailMs: window.end - last.finishedAt,
      };
    }),
  };
}
