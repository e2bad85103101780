import {
  type Executor,
  localExecutor,
  queueExecutor,
  type UnitFailure,
  type UnitProgress,
} from '@decompose/jobs';
import { type ArmEvent, PIPELINE_QUEUE } from '@decompose/pipeline';
import type { EpochMetrics, StepProgress } from '@decompose/train';
import { RunnerError } from '../errors.js';
import type { Console } from '../progress.js';
import { trainingProgress } from '../train.js';

/** A unit of the pipeline failed for good; the message names it and says what the unit reported. */
export class UnitFailedError extends RunnerError {
  override name = 'UnitFailedError';
  constructor(what: string, failure: UnitFailure) {
    super(`${what} failed: ${failure.name}: ${failure.message}`);
  }
}

/**
 * Draws a unit's progress as a local run draws it: its training steps as a bar, its epochs as log lines, and
 * the arm pipeline's events through `onEvent`.
 */
export function unitProgress(
  batch: number,
  out: Console,
  onEvent: (event: ArmEvent) => void = () => {},
): (progress: UnitProgress) => void {
  const training = trainingProgress(batch, out);
  return (progress) => {
    if (typeof progress === 'number') return;
    const { phase } = progress;
    if (phase === 'step') training.onStep(progress as unknown as StepProgress);
    else if (phase === 'epoch') training.onEpoch(progress.metrics as unknown as EpochMetrics);
    else onEvent(progress as unknown as ArmEvent);
  };
}
