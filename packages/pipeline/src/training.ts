import type { Cifar10Images } from '@decompose/cifar10';
import type { ScheduleSpec, TrainOptions } from '@decompose/train';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';

/**
 * The SGD settings of one training run (`decompose train`, compare's baseline, every fine-tune). The runner's
 * configs check their bounds; this schema checks their shape where they travel as a unit's input.
 */
export const sgdSettingsSchema = z.object({
  batch: z.number().int().positive(),
  lr: z.number().positive(),
  momentum: z.number().min(0).max(1),
  nesterov: z.boolean(),
  weightDecay: z.number().min(0),
  decayOn: z.enum(['all', 'kernels']),
  schedule: z.enum(['cosine', 'step', 'constant']),
  milestones: z.array(z.number().int().positive()).optional(),
  gamma: z.number().positive(),
  warmupEpochs: z.number().min(0),
  labelSmoothing: z.number().min(0).lt(1),
  augment: z.boolean(),
  /** Gradient worker threads of the run (0: the thread the run is in). */
  workers: z.number().int().min(0),
  seed: z.number().int().min(0),
});
/** See {@link sgdSettingsSchema}. */
export type SgdSettings = z.output<typeof sgdSettingsSchema>;

function scheduleSpec(settings: SgdSettings, epochs: number): ScheduleSpec {
  const { lr, warmupEpochs } = settings;
  switch (settings.schedule) {
    case 'cosine':
      return { type: 'cosine', lr, warmupEpochs };
    case 'constant':
      return { type: 'constant', lr, warmupEpochs };
    case 'step': {
      const milestones = settings.milestones ?? [
        ...new Set([Math.round(epochs / 2), Math.round((3 * epochs) / 4)].filter((e) => e >= 1)),
      ];
      return { type: 'step', lr, milestones, gamma: settings.gamma, warmupEpochs };
    }
  }
}

/**
 * The `train()` options of `model` under `settings` (schedule, optimizer, augmentation, workers), without
 * progress callbacks: every training run of decompose is built here, so they cannot drift apart.
 */
export function trainOptions(
  settings: SgdSettings,
  run: { model: tfl.LayersModel; trainData: Cifar10Images; evalData?: Cifar10Images; epochs: number },
): TrainOptions {
  return {
    ...run,
    batchSize: settings.batch,
    augment: settings.augment,
    seed: settings.seed,
    schedule: scheduleSpec(settings, run.epochs),
    optimizer: {
      momentum: settings.momentum,
      nesterov: settings.nesterov,
      weightDecay: settings.weightDecay,
      weightDecayScope: settings.decayOn,
    },
    labelSmoothing: settings.labelSmoothing,
    workers: settings.workers,
  };
}

/** `n` and a noun, plural unless n is 1: `1 epoch`, `2 epochs`. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
