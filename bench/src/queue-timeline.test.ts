import { describe, expect, it } from 'vitest';
import { type JobSpan, jobOverheads, phaseTime } from './queue-timeline.js';

// Two workers, a phase from 0 to 100: `a` runs jobs 10-40 and 45-70, `b` runs 12-90; all enqueued at 8.
const jobs: JobSpan[] = [
  { label: 'one', worker: 'a', enqueuedAt: 8, startedAt: 10, finishedAt: 40, seenAt: 42 },
  { label: 'two', worker: 'b', enqueuedAt: 8, startedAt: 12, finishedAt: 90, seenAt: 95 },
  { label: 'three', worker: 'a', enqueuedAt: 8, startedAt: 45, finishedAt: 70, seenAt: 71 },
];

describe('jobOverheads', () => {
  it('measures dispatch from when the worker was free, not from the enqueue', () => {
    expect(jobOverheads(jobs)).toEqual([
      { label: 'one', runMs: 30, dispatchMs: 2, deliveryMs: 2 },
      { label: 'two', runMs: 78, dispatchMs: 4, deliveryMs: 5 },
      // Waited 37 ms in the queue, but only 5 of them with its worker free.
      { label: 'three', runMs: 25, dispatchMs: 5, deliveryMs: 1 },
    ]);
  });
});

describe('phaseTime', () => {
  it("splits each worker's wall time into busy, before the first job, between jobs and tail", () => {
    const phase = phaseTime('scan', { start: 0, end: 100 }, jobs, ['a', 'b', 'c']);
    expect(phase).toEqual({
      phase: 'scan',
      wallMs: 100,
      beforeEnqueueMs: 8,
      workers: [
        { worker: 'a', jobs: 2, busyMs: 55, beforeFirstMs: 10, betweenMs: 5, tailMs: 30 },
        { worker: 'b', jobs: 1, busyMs: 78, beforeFirstMs: 12, betweenMs: 0, tailMs: 10 },
        { worker: 'c', jobs: 0, busyMs: 0, beforeFirstMs: 100, betweenMs: 0, tailMs: 0 },
      ],
    });
    for (const w of phase.workers) expect(w.busyMs + w.beforeFirstMs + w.betweenMs + w.tailMs).toBe(100);
  });

  it('has no enqueue time for a phase without jobs', () => {
    expect(phaseTime('arms', { start: 0, end: 5 }, [], ['a']).beforeEnqueueMs).toBeNull();
  });
});
