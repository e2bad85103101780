import { type ApplyStrategyOptions, applyStrategy, type InitMode, type SurgeryResult } from '@decompose/core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { BasisConfigError } from './errors.js';
import type { BasisOptions } from './options.js';
import { basisStrategy } from './strategy.js';

/**
 * How a network with basis convolutions is trained:
 * - `scratch`: convert the untrained network before epoch 0 (fresh basis filters and coefficients) and
 *   train it as it is;
 * - `warmup`: train the dense network for `denseEpochs`, then convert from the trained weights (basis chosen
 *   by pivoted QR, coefficients by least squares) and continue training the basis network.
 */
export const basisScheduleSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('scratch') }),
  z.strictObject({
    kind: z.literal('warmup'),
    denseEpochs: z.number().int('denseEpochs must be a whole number').min(1, 'denseEpochs must be ≥ 1'),
  }),
]);

/** A validated training schedule (see {@link basisScheduleSchema}). */
export type BasisSchedule = z.output<typeof basisScheduleSchema>;

/** When to convert, and how to initialise the basis layers. */
export interface BasisTrainingPlan {
  /** The epoch (0-based) before which the model is converted; epochs before it train the dense model. */
  convertBeforeEpoch: number;
  init: InitMode;
}

/** The conversion point of `schedule` in a run of `totalEpochs` epochs. */
export function planBasisTraining(schedule: BasisSchedule, totalEpochs: number): BasisTrainingPlan {
  if (schedule.kind === 'scratch') return { convertBeforeEpoch: 0, init: 'scratch' };
  if (schedule.denseEpochs >= totalEpochs) {
    throw new BasisConfigError(
      `denseEpochs (${schedule.denseEpochs}) must be below the total epochs (${totalEpochs}) so the basis network trains at all.`,
    );
  }
  return { convertBeforeEpoch: schedule.denseEpochs, init: 'trained' };
}

/**
 * Rewrites the selected Conv2D layers of `model` as basis convolutions (core's `applyStrategy` with
 * {@link basisStrategy}); `init: 'scratch'` for the from-scratch schedule, `'trained'` after a warm-up.
 * Returns a new model and a report (each layer's m and, when fitted, its relative reconstruction error).
 */
export function convertToBasis(
  model: LayersModel,
  request: ApplyStrategyOptions,
): SurgeryResult<BasisOptions> {
  return applyStrategy(model, basisStrategy, request);
}
