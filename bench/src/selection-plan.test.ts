import { basisStrategy } from '@decompose/basis';
import { initEngine } from '@decompose/engine';
import { createCifarResNet } from '@decompose/resnet';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Candidate, candidateLayers, planCost, randomPlan, uniformPlan } from './selection-plan.js';

let candidates: Candidate[];

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
  const model = createCifarResNet({ arch: 'resnet20', shortcut: 'B', init: 'pytorch', seed: 0 });
  candidates = candidateLayers(model, basisStrategy);
  model.dispose();
});

const RATIOS = [0.125, 0.25, 0.5, 0.75];

describe('candidateLayers', () => {
  it('keeps the 19 3×3 convs of ResNet-20 and leaves the 1×1 shortcut projections out', () => {
    expect(candidates).toHaveLength(19);
    expect(candidates.some((c) => c.layer.includes('shortcut'))).toBe(false);
    // 3·16·9 (stem) + 6·16·16·9 + (16·32 + 5·32·32)·9 + (32·64 + 5·64·64)·9
    expect(planCost(candidates, []).denseParams).toBe(432 + 13824 + 50688 + 202752);
  });

  it('costs a supported ratio below the dense layer and reports an unsupported one (m = C_out) as null', () => {
    const stem = candidates.find((c) => c.layer === 'stem.conv')!;
    // m = 12 of 16: 12·3·9 basis weights + (16 − 12)·12 coefficients.
    expect(stem.costAt(0.75)?.params).toBe(12 * 27 + 4 * 12);
    expect(stem.costAt(1)).toBeNull();
  });
});

describe('plans of a parameter budget', () => {
  it('finds one ratio for every layer that just reaches the reduction', () => {
    const { ratio, plan } = uniformPlan(candidates, 0.4);
    expect(plan).toHaveLength(19);
    expect(planCost(candidates, plan).paramsReduction).toBeGreaterThanOrEqual(0.4);
    const slightlyLarger = plan.map((p) => ({ ...p, ratio: ratio + 0.01 }));
    expect(planCost(candidates, slightlyLarger).paramsReduction).toBeLessThan(0.4);
  });

  it('draws random plans that reach the reduction, differ by seed and repeat for a seed', () => {
    const a = randomPlan(candidates, RATIOS, 0.4, 1);
    const b = randomPlan(candidates, RATIOS, 0.4, 2);
    expect(planCost(candidates, a).paramsReduction).toBeGreaterThanOrEqual(0.4);
    expect(planCost(candidates, b).paramsReduction).toBeGreaterThanOrEqual(0.4);
    expect(a).not.toEqual(b);
    expect(randomPlan(candidates, RATIOS, 0.4, 1)).toEqual(a);
  });
});
