/**
 * Layer plans for the selection benchmark: which layers get a basis convolution at which ratio, what that saves
 * over the candidate layers, and the two comparison plans (one ratio everywhere; random subsets).
 */

import { Rng } from '@decompose/cifar10';
import {
  convCost,
  type DecompositionStrategy,
  type LayerCost,
  listTargets,
  type TargetLayer,
} from '@decompose/core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** One decomposed layer of a plan. */
export interface PlanLayer {
  layer: string;
  ratio: number;
}

/** A candidate conv layer and what each ratio would cost. */
export interface Candidate {
  layer: string;
  dense: LayerCost;
  /** Cost at a ratio, or null when the strategy does not support the ratio there (it stays dense). */
  costAt: (ratio: number) => LayerCost | null;
}

/**
 * The candidate layers: every trainable 3×3 convolution (stride any) of the model, in graph order. 1×1
 * shortcut projections and non-conv layers are left out.
 */
export function candidateLayers<Options>(
  model: LayersModel,
  strategy: DecompositionStrategy<Options>,
): Candidate[] {
  return listTargets(model)
    .filter(
      (t): t is TargetLayer & { conv: NonNullable<TargetLayer['conv']> } =>
        t.conv !== null && t.layer.trainable && t.conv.kernelSize[0] === 3 && t.conv.kernelSize[1] === 3,
    )
    .map((target) => ({
      layer: target.name,
      dense: convCost(target.conv),
      costAt: (ratio: number) => {
        const options = strategy.optionsSchema.parse({ ratio });
        return strategy.supports(target, options).ok ? strategy.cost(target.conv, options) : null;
      },
    }));
}

/** Params and forward MACs of the candidate layers under a plan, and the fraction removed. */
export interface PlanCost {
  params: number;
  macs: number;
  denseParams: number;
  denseMacs: number;
  paramsReduction: number;
  macsReduction: number;
}

/** What a plan costs over all candidate layers (layers not in the plan stay dense). */
export function planCost(candidates: readonly Candidate[], plan: readonly PlanLayer[]): PlanCost {
  const ratioOf = new Map(plan.map((p) => [p.layer, p.ratio]));
  let params = 0;
  let macs = 0;
  let denseParams = 0;
  let denseMacs = 0;
  for (const c of candidates) {
    const ratio = ratioOf.get(c.layer);
    const cost = (ratio === undefined ? null : c.costAt(ratio)) ?? c.dense;
    params += cost.params;
    macs += cost.forwardMacs;
    denseParams += c.dense.params;
    denseMacs += c.dense.forwardMacs;
  }
  return {
    params,
    macs,
    denseParams,
    denseMacs,
    paramsReduction: 1 - params / denseParams,
    macsReduction: 1 - macs / denseMacs,
  };
}

/**
 * The plan that puts every candidate layer at one ratio: the largest ratio (found by bisection; the saving
 * only shrinks as the ratio grows) whose parameter reduction still reaches `reduction`. Layers the strategy
 * cannot decompose at that ratio stay dense.
 */
export function uniformPlan(
  candidates: readonly Candidate[],
  reduction: number,
): { ratio: number; plan: PlanLayer[] } {
  const planAt = (ratio: number) =>
    candidates.filter((c) => c.costAt(ratio) !== null).map((c) => ({ layer: c.layer, ratio }));
  const reaches = (ratio: number) => planCost(candidates, planAt(ratio)).paramsReduction >= reduction;
  let lo = 1 / 1024;
  let hi = 1;
  if (!reaches(lo)) throw new RangeError(`No single ratio removes ${reduction} of the candidate params.`);
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (reaches(mid)) lo = mid;
    else hi = mid;
  }
  const ratio = Number(lo.toFixed(6));
  return { ratio, plan: planAt(ratio) };
}

/**
 * A random plan of about the same parameter reduction: candidate layers in a seeded random order, each at a
 * random one of `ratios` (among those the strategy supports there), added until the reduction is reached;
 * the last layer's ratio is then the one that lands closest to the target from above.
 */
export function randomPlan(
  candidates: readonly Candidate[],
  ratios: readonly number[],
  reduction: number,
  seed: number,
): PlanLayer[] {
  const rng = Rng.fromSeed(seed);
  const order = rng.shuffle([...candidates]);
  const plan: PlanLayer[] = [];
  const reductionOf = (p: readonly PlanLayer[]) => planCost(candidates, p).paramsReduction;
  for (const c of order) {
    const supported = ratios.filter((r) => c.costAt(r) !== null);
    if (supported.length === 0) continue;
    plan.push({ layer: c.layer, ratio: supported[rng.nextInt(supported.length)]! });
    if (reductionOf(plan) < reduction) continue;
    const reaching = supported
      .map((ratio) => ({ ratio, achieved: reductionOf([...plan.slice(0, -1), { layer: c.layer, ratio }]) }))
      .filter((x) => x.achieved >= reduction)
      .sort((a, b) => a.achieved - b.achieved);
    plan[plan.length - 1] = { layer: c.layer, ratio: reaching[0]!.ratio };
    break;
  }
  const position = new Map(candidates.map((c, i) => [c.layer, i]));
  return plan.sort((a, b) => position.get(a.layer)! - position.get(b.layer)!);
}
