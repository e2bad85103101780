import type * as tf from '@tensorflow/tfjs-core';

type Json = unknown;

/**
 * The artifacts with every `SeparableConv2D` of the topology (nested models included) given the
 * `depth_multiplier` its weights have. tfjs-layers 4.22's `SeparableConv2D.getConfig` leaves the field out, so a
 * model it saves with a multiplier above 1 reloads with 1 and fails on its own weights (`Shape mismatch:
 * [3,3,64,1] vs. [3,3,64,2]`). The multiplier is the last axis of the layer's `depthwise_kernel`, so a topology
 * saved without it is repaired from the weight specs, on save and on load alike. Other topologies are returned
 * as they are.
 */
export function withSeparableDepthMultipliers(artifacts: tf.io.ModelArtifacts): tf.io.ModelArtifacts {
  const topology = artifacts.modelTopology;
  if (topology === undefined || topology instanceof ArrayBuffer) return artifacts;
  const multipliers = new Map<string, number>();
  for (const spec of artifacts.weightSpecs ?? []) {
    const match = /(?:^|\/)([^/]+)\/depthwise_kernel$/.exec(spec.name);
    const last = spec.shape[spec.shape.length - 1];
    if (match !== null && spec.shape.length === 4 && last !== undefined) multipliers.set(match[1]!, last);
  }
  if (multipliers.size === 0) return artifacts;
  let changed = false;
  const repair = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(repair);
    if (node === null || typeof node !== 'object') return node;
    const entries = Object.entries(node).map(([key, value]) => [key, repair(value)] as const);
    const object = Object.fromEntries(entries) as Record<string, Json>;
    const config = object.config as Record<string, Json> | undefined;
    if (object.class_name === 'SeparableConv2D' && config !== undefined && config.depth_multiplier == null) {
      const multiplier = multipliers.get(String(config.name));
      if (multiplier !== undefined) {
        object.config = { ...config, depth_multiplier: multiplier };
        changed = true;
      }
    }
    return object;
  };
  const repaired = repair(topology) as tf.io.ModelArtifacts['modelTopology'];
  return changed ? { ...artifacts, modelTopology: repaired } : artifacts;
}
