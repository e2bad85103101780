import { z } from 'zod';
import { InvalidTrainingOptionError } from './errors.js';

const warmup = { warmupEpochs: z.number().min(0).default(0) };

/** Zod schema of {@link ScheduleSpec}; parsing fills in the defaults. */
export const scheduleSpecSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('constant'), lr: z.number().positive(), ...warmup }).strict(),
  z
    .object({
      type: z.literal('cosine'),
      lr: z.number().positive(),
      floor: z.number().min(0).default(0),
      ...warmup,
    })
    .strict(),
  z
    .object({
      type: z.literal('step'),
      lr: z.number().positive(),
      milestones: z.array(z.number().int().positive()),
      gamma: z.number().positive(),
      ...warmup,
    })
    .strict(),
]);

/**
 * A learning-rate schedule, optionally behind a linear warm-up of `warmupEpochs` (may be fractional):
 * - `constant`: `lr` throughout;
 * - `cosine`: per-step cosine decay from `lr` to `floor` (default 0) over the training steps after warm-up,
 *   as PyTorch's `CosineAnnealingLR(T_max = total steps, eta_min = floor)` stepped after every batch;
 * - `step`: `lr · gamma^k` where k counts the `milestones` (epochs) already reached, as `MultiStepLR`
 *   stepped after every epoch.
 */
export type ScheduleSpec = z.input<typeof scheduleSpecSchema>;

/** Learning rate of a global step (0-based): a pure function of the step. */
export type LrSchedule = (step: number) => number;

/** How many steps the schedule spans. */
export interface ScheduleLength {
  stepsPerEpoch: number;
  epochs: number;
}

/** Checks a schedule spec and fills in its defaults; throws {@link InvalidTrainingOptionError}. */
export function resolveScheduleSpec(spec: ScheduleSpec): z.output<typeof scheduleSpecSchema> {
  const parsed = scheduleSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidTrainingOptionError(
      `schedule.${issue?.path.join('.') ?? ''}`,
      issue?.message ?? 'invalid value',
    );
  }
  const resolved = parsed.data;
  if (resolved.type === 'cosine' && resolved.floor > resolved.lr) {
    throw new InvalidTrainingOptionError(
      'schedule.floor',
      `floor ${resolved.floor} exceeds lr ${resolved.lr}`,
    );
  }
  if (
    resolved.type === 'step' &&
    resolved.milestones.some((m, i) => i > 0 && m <= resolved.milestones[i - 1]!)
  ) {
    throw new InvalidTrainingOptionError(
      'schedule.milestones',
      'milestones must be strictly increasing epochs',
    );
  }
  return resolved;
}

/** Builds the learning rate as a function of the global step for a run of `length` steps. */
export function createSchedule(spec: ScheduleSpec, length: ScheduleLength): LrSchedule {
  const resolved = resolveScheduleSpec(spec);
  const { stepsPerEpoch, epochs } = length;
  if (!Number.isInteger(stepsPerEpoch) || stepsPerEpoch < 1) {
    throw new InvalidTrainingOptionError('stepsPerEpoch', `must be a positive integer, got ${stepsPerEpoch}`);
  }
  if (!Number.isInteger(epochs) || epochs < 1) {
    throw new InvalidTrainingOptionError('epochs', `must be a positive integer, got ${epochs}`);
  }
  const totalSteps = stepsPerEpoch * epochs;
  const warmupSteps = Math.round(resolved.warmupEpochs * stepsPerEpoch);
  if (warmupSteps >= totalSteps && warmupSteps > 0) {
    throw new InvalidTrainingOptionError(
      'schedule.warmupEpochs',
      `warm-up (${resolved.warmupEpochs} epochs) must be shorter than training (${epochs} epochs)`,
    );
  }
  const base = (step: number): number => {
    switch (resolved.type) {
      case 'constant':
        return resolved.lr;
      case 'cosine': {
        const progress = Math.min(1, (step - warmupSteps) / (totalSteps - warmupSteps));
        return resolved.floor + (resolved.lr - resolved.floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
      }
      case 'step': {
        const epoch = Math.floor(step / stepsPerEpoch);
        const reached = resolved.milestones.filter((m) => m <= epoch).length;
        return resolved.lr * resolved.gamma ** reached;
      }
    }
  };
  return (step) => {
    if (!Number.isInteger(step) || step < 0) {
      throw new InvalidTrainingOptionError('step', `must be a non-negative integer, got ${step}`);
    }
    return step < warmupSteps ? (base(warmupSteps) * (step + 1)) / warmupSteps : base(step);
  };
}
