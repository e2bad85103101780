import { initEngine } from '@decompose/engine';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedLayerError } from './errors.js';
import { applyStrategy, planStrategy } from './surgery.js';
import { recordingConv2dIdentity } from './test/conv2d-identity.js';
import { conv1dModel, separableModel } from './testing.js';

beforeAll(async () => {
  await initEngine({ backend: 'cpu' });
});

/** What a plan says and what surgery did, in comparable form. */
function compare(model: LayersModel, layers?: string[]) {
  const { strategy } = recordingConv2dIdentity();
  const request = { ...(layers === undefined ? {} : { layers }), options: { ratio: 0.5 } };
  const before = tf.memory().numTensors;
  const plan = planStrategy(model, strategy, request);
  expect(tf.memory().numTensors).toBe(before);
  const surgery = applyStrategy(model, strategy, request);
  surgery.model.dispose();
  return { plan, surgery };
}

describe('planStrategy', () => {
  it('plans what applyStrategy rewrites, with its options and costs, Conv1D and SeparableConv2D included', () => {
    for (const model of [separableModel(), conv1dModel({ causal: true })]) {
      const { plan, surgery } = compare(model);
      expect(plan.rewrites.length).toBeGreaterThan(0);
      expect(plan.rewrites).toEqual(
        surgery.report.map((r) => ({
          layer: r.layer,
          className: r.className,
          options: r.options,
          before: r.before,
          after: r.after,
        })),
      );
      expect(plan.skipped).toEqual(surgery.skipped);
      model.dispose();
    }
  });

  it('skips with the reason, and refuses an exactly named layer, as surgery does', () => {
    const model = conv1dModel({ causal: true });
    const { plan } = compare(model);
    expect(plan.skipped.map((s) => s.layer)).toEqual(['c4']);
    expect(plan.skipped[0]!.reason).toMatch(/causal padding/);
    const { strategy } = recordingConv2dIdentity();
    expect(() => planStrategy(model, strategy, { layers: ['c4'], options: { ratio: 0.5 } })).toThrow(
      UnsupportedLayerError,
    );
    model.dispose();
  });
});
