import * as tf from '@tensorflow/tfjs-core';
import type { LayerVariable } from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { GradientMismatchError, InvalidTrainingOptionError } from './errors.js';

/**
 * Which weights weight decay applies to: `all` trainable weights (BatchNorm's γ and β and biases included,
 * as PyTorch's `SGD(model.parameters(), weight_decay=…)` does), or only `kernels` — weights of rank ≥ 2,
 * i.e. convolution and dense kernels, leaving biases and BatchNorm parameters undecayed.
 */
export type WeightDecayScope = 'all' | 'kernels';

/** SGD settings, PyTorch semantics (`torch.optim.SGD` with dampening 0). */
export interface SgdOptions {
  /** Momentum factor μ (default 0: plain SGD). */
  momentum?: number;
  /** Nesterov momentum (default false); needs momentum > 0. */
  nesterov?: boolean;
  /** L2 weight decay λ added to the gradient, `grad += λ·w` (default 0). */
  weightDecay?: number;
  /** Which weights decay (default `all`). */
  weightDecayScope?: WeightDecayScope;
}

/** Zod schema of {@link SgdOptions}; parsing fills in the defaults. */
export const sgdOptionsSchema = z
  .object({
    momentum: z.number().min(0).lt(1).default(0),
    nesterov: z.boolean().default(false),
    weightDecay: z.number().min(0).default(0),
    weightDecayScope: z.enum(['all', 'kernels']).default('all'),
  })
  .strict();

/** {@link SgdOptions} with every default filled in. */
export type ResolvedSgdOptions = z.output<typeof sgdOptionsSchema>;

/** Fills in defaults and checks ranges; throws {@link InvalidTrainingOptionError} naming the bad field. */
export function resolveSgdOptions(options: SgdOptions = {}): ResolvedSgdOptions {
  const parsed = sgdOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidTrainingOptionError(
      `optimizer.${issue?.path.join('.') ?? ''}`,
      issue?.message ?? 'invalid value',
    );
  }
  if (parsed.data.nesterov && parsed.data.momentum === 0) {
    throw new InvalidTrainingOptionError('optimizer.nesterov', 'Nesterov momentum needs momentum > 0');
  }
  return parsed.data;
}

/** Momentum buffers of an {@link SgdOptimizer}, one per trainable weight, for checkpoints. */
export interface SgdState {
  /** `originalName` of each weight, in `model.trainableWeights` order. */
  names: string[];
  /** Momentum buffer of each weight (same order and sizes as the weights). */
  buffers: Float32Array[];
}

const f32 = Math.fround;

/**
 * Stochastic gradient descent with momentum and weight decay, exactly as `torch.optim.SGD` (dampening 0):
 * `g = grad + λ·w`; `buf = μ·buf + g`; `w -= lr·buf`, or with Nesterov `w -= lr·(g + μ·buf)`.
 * Every operation is rounded to float32 as PyTorch's float32 tensors are. Runs on the main thread over the
 * batch-averaged gradients and writes the new values into the model's variables in place.
 */
export class SgdOptimizer {
  /** The settings in force, defaults filled in. */
  readonly options: ResolvedSgdOptions;
  private readonly weights: readonly LayerVariable[];
  private readonly buffers: Float32Array[];
  private readonly decays: readonly boolean[];

  /** @param weights the weights to update, normally `model.trainableWeights`. */
  constructor(weights: readonly LayerVariable[], options: SgdOptions = {}) {
    this.options = resolveSgdOptions(options);
    this.weights = weights;
    this.buffers = weights.map((w) => new Float32Array(sizeOf(w.shape)));
    this.decays = weights.map(
      (w) => this.options.weightDecay > 0 && (this.options.weightDecayScope === 'all' || w.shape.length >= 2),
    );
  }

  /** Applies one update with learning rate `lr`; `gradients` come in the order of the weights. */
  step(gradients: readonly Float32Array[], lr: number): void {
    if (gradients.length !== this.weights.length) {
      throw new GradientMismatchError(
        `Got ${gradients.length} gradients for ${this.weights.length} trainable weights`,
      );
    }
    const { momentum, nesterov, weightDecay } = this.options;
    for (const [index, variable] of this.weights.entries()) {
      const grad = gradients[index]!;
      const buf = this.buffers[index]!;
      if (grad.length !== buf.length) {
        throw new GradientMismatchError(
          `Gradient ${index} (${variable.originalName}) has ${grad.length} values, the weight has ${buf.length}`,
        );
      }
      const decay = this.decays[index] ? weightDecay : 0;
      // dataSync may hand back the backend's own storage: read it, never write into it.
      const current = variable.read().dataSync() as Float32Array;
      const next = new Float32Array(current.length);
      for (let i = 0; i < next.length; i++) {
        const w = current[i]!;
        const g = decay === 0 ? grad[i]! : f32(grad[i]! + f32(decay * w));
        let direction = g;
        if (momentum !== 0) {
          const b = f32(f32(momentum * buf[i]!) + g);
          buf[i] = b;
          direction = nesterov ? f32(g + f32(momentum * b)) : b;
        }
        next[i] = w - f32(lr * direction);
      }
      const updated = tf.tensor(next, variable.shape as number[], 'float32');
      variable.write(updated);
      updated.dispose();
    }
  }

  /** A copy of the momentum buffers, for a checkpoint. */
  getState(): SgdState {
    return {
      names: this.weights.map((w) => w.originalName),
      buffers: this.buffers.map((b) => b.slice()),
    };
  }

  /** Restores momentum buffers saved by {@link getState}; names and sizes must match the weights. */
  setState(state: SgdState): void {
    const expected = this.weights.map((w) => w.originalName);
    if (state.names.length !== expected.length || state.names.some((name, i) => name !== expected[i])) {
      throw new GradientMismatchError(
        `Optimizer state is for weights [${state.names.join(', ')}], not [${expected.join(', ')}]`,
      );
    }
    for (const [index, buffer] of state.buffers.entries()) {
      const target = this.buffers[index]!;
      if (buffer.length !== target.length) {
        throw new GradientMismatchError(
          `Optimizer state for ${expected[index]} has ${buffer.length} values, the weight has ${target.length}`,
        );
      }
      target.set(buffer);
    }
  }
}

function sizeOf(shape: readonly (number | null)[]): number {
  return shape.reduce<number>((n, d) => n * (d ?? 1), 1);
}
