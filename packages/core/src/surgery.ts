import { dispose, type Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { carryOver } from './carry.js';
import { addCosts, convCost } from './cost.js';
import {
  InvalidDecompositionError,
  NonFiniteWeightsError,
  SelectionError,
  UnknownLayerError,
  UnsupportedLayerError,
  UnsupportedModelError,
} from './errors.js';
import { callLike, rebuildGraph } from './graph.js';
import { parseStrategyOptions } from './options.js';
import { closeNames, type LayerSelection, selectLayers } from './select.js';
import type {
  ConvShape,
  Decomposition,
  DecompositionStrategy,
  InitMode,
  Layer,
  LayerCost,
  TargetLayer,
} from './strategy.js';
import {
  describeLayer,
  type GraphNode,
  graphOf,
  isNestedModel,
  PATH_SEPARATOR,
  type PlacedLayer,
  placedLayers,
  targetShape,
  unsupportedReason,
} from './target.js';
import { type Conv2DView, conv2dView, type StockPart } from './view.js';

/** What to rewrite, with which options, and how to initialise the replacements. */
export interface ApplyStrategyOptions {
  /**
   * Layers to rewrite (names, globs or a predicate; see `LayerSelection`). Defaults to the names in
   * `perLayerOptions` when it is given, else to every layer the strategy supports (every layer with a kernel
   * is considered: `Conv2D`, `Dense`, and e.g. `DepthwiseConv2D`, which is skipped with its reason). Layers
   * matched by glob, predicate or the default that are not trainable, neither a plain `Conv2D` nor a `Dense`,
   * or that the strategy does not support are skipped (listed in `skipped`); an exactly named one the strategy
   * cannot handle is an `UnsupportedLayerError`.
   */
  layers?: LayerSelection;
  /** Raw options for every selected layer, parsed with `strategy.optionsSchema`. */
  options?: unknown;
  /**
   * Raw options per layer name (e.g. a ratio per layer from a sensitivity selection). When both these and
   * `options` are plain objects they are merged, the per-layer fields winning; otherwise they replace `options`.
   */
  perLayerOptions?: Readonly<Record<string, unknown>>;
  /** `trained` (default) fits the replacements to the trained weights; `scratch` starts them fresh. */
  init?: InitMode;
  /** Base seed (default 0); each layer gets its own seed derived from this and its name. */
  seed?: number;
}

/** One rewritten layer. */
export interface LayerReplacement<Options = unknown> {
  /** Name of the original layer. */
  layer: string;
  /** Its class name, e.g. `Conv2D`. */
  className: string;
  /** Names of the layers that replace it, in order. */
  replacements: string[];
  /** The parsed options used for this layer. */
  options: Options;
  /** The seed handed to the strategy for this layer. */
  seed: number;
  /** The strategy's diagnostics, e.g. `{ relativeError: 0.03 }`. */
  info?: Record<string, number | string>;
  /**
   * What the report cannot say exactly or what surgery could not carry over to the replacements, one sentence
   * each (e.g. MACs per output pixel for an input of unknown spatial size); omitted when there is nothing.
   */
  notes?: string[];
  /** Cost of the original layer (`convCost` of its geometry; a Dense as the 1×1 convolution it equals). */
  before: LayerCost;
  /** Cost of the replacement, as the strategy computes it. */
  after: LayerCost;
}

/** A layer that a glob or predicate matched but that was left as it is. */
export interface SkippedLayer {
  layer: string;
  reason: string;
}

/** The rewritten model (a new model; the original is untouched) and what was done. */
export interface SurgeryResult<Options = unknown> {
  model: LayersModel;
  report: LayerReplacement<Options>[];
  skipped: SkippedLayer[];
}

interface PlannedRewrite<Options> {
  /** What the strategy rewrites: the layer itself, or the stock Conv2D of its {@link Conv2DView}. */
  target: TargetLayer;
  /** For a Conv1D or SeparableConv2D: the Conv2D the strategy sees and the stock layers around it (owned here). */
  view?: Conv2DView;
  /** Where the layer sits (its path, the graph it is called in and the sub-models around it). */
  placed: PlacedLayer;
  /** The geometry the target is costed by (a Dense as the 1×1 convolution it equals). */
  shape: ConvShape;
  options: Options;
  seed: number;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function rawOptionsFor(shared: unknown, perLayer: unknown): unknown {
  if (perLayer === undefined) return shared;
  if (isPlainObject(shared) && isPlainObject(perLayer)) return { ...shared, ...perLayer };
  return perLayer;
}

/** A 32-bit seed for one layer: FNV-1a of its name, mixed with the base seed, so layers draw different numbers. */
export function layerSeed(seed: number, layerName: string): number {
  let hash = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < layerName.length; i++) {
    hash ^= layerName.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Validates the whole request (selection, options, support, finite weights) before anything is built. */
function planRewrites<Options>(
  model: LayersModel,
  strategy: DecompositionStrategy<Options>,
  request: ApplyStrategyOptions,
): { plans: Map<Layer, PlannedRewrite<Options>>; skipped: SkippedLayer[] } {
  const perLayer = request.perLayerOptions ?? {};
  const selection =
    request.layers ?? (request.perLayerOptions === undefined ? hasKernel : Object.keys(perLayer));
  if (Array.isArray(selection) && selection.length === 0) {
    throw new SelectionError(
      'no layers were selected: pass `layers` (names, globs or a predicate) or `perLayerOptions`',
    );
  }
  // Layers of nested sub-models stand in for them, named by their path (`backbone/conv1`).
  const candidates = placedLayers(model).map((placed) => ({
    name: placed.path,
    layer: placed.layer,
    placed,
  }));
  const selected = selectLayers(candidates, selection, (c) => describeLayer(model, c.placed));
  const selectedNames = new Set(selected.map((s) => s.candidate.name));
  for (const name of Object.keys(perLayer)) {
    if (!candidates.some((c) => c.name === name)) {
      throw new UnknownLayerError(
        name,
        closeNames(
          name,
          candidates.map((c) => c.name),
        ),
      );
    }
    if (!selectedNames.has(name)) {
      throw new SelectionError(`perLayerOptions has options for '${name}', which \`layers\` does not select`);
    }
  }
  // Parsed once, and only if some layer has no options of its own (they may make the shared ones complete).
  let shared: { options: Options } | undefined;
  const sharedOptions = () => {
    shared ??= { options: parseStrategyOptions(strategy, request.options ?? {}) };
    return shared.options;
  };
  const plans = new Map<Layer, PlannedRewrite<Options>>();
  const skipped: SkippedLayer[] = [];
  try {
    for (const { candidate, explicit } of selected) {
      const { layer, placed, name } = candidate;
      const own = perLayer[name];
      const options =
        own === undefined
          ? sharedOptions()
          : parseStrategyOptions(strategy, rawOptionsFor(request.options ?? {}, own), name);
      const described = describeLayer(model, placed);
      // Core's reason first: it is the real one (e.g. a channelsFirst convolution, a causal Conv1D).
      const reason =
        !explicit && !layer.trainable ? 'the layer is not trainable' : unsupportedReason(described);
      const view = reason === null ? conv2dView(placed, described) : null;
      const target = view?.target ?? described;
      let refusal = reason;
      try {
        if (refusal === null) refusal = supportReason(strategy, target, options);
      } finally {
        if (refusal !== null) view?.dispose();
      }
      if (refusal !== null) {
        if (explicit) throw new UnsupportedLayerError(name, strategy.name, refusal);
        skipped.push({ layer: name, reason: refusal });
        continue;
      }
      plans.set(layer, {
        target,
        ...(view === null ? {} : { view }),
        placed,
        shape: targetShape(target)!,
        options,
        seed: layerSeed(request.seed ?? 0, name),
      });
    }
    for (const layer of plans.keys()) checkFinite(layer);
  } catch (error) {
    disposeViews(plans);
    throw error;
  }
  return { plans, skipped };
}

/** Releases the stand-in Conv2D layers of the plans' views. */
function disposeViews(plans: Map<Layer, PlannedRewrite<unknown>>): void {
  for (const plan of plans.values()) plan.view?.dispose();
}

/** Throws {@link NonFiniteWeightsError} for the first weight of `layer` holding NaN or an infinity. */
function checkFinite(layer: Layer): void {
  for (const weight of layer.weights) {
    const values = weight.read().dataSync();
    let count = 0;
    let first = -1;
    for (let i = 0; i < values.length; i++) {
      if (Number.isFinite(values[i])) continue;
      count++;
      if (first < 0) first = i;
    }
    if (count > 0)
      throw new NonFiniteWeightsError(layer.name, weight.originalName, count, first, Number(values[first]));
  }
}

/** Why the strategy refuses `target` (which core accepts), or null when it can be rewritten. */
function supportReason<Options>(
  strategy: DecompositionStrategy<Options>,
  target: TargetLayer,
  options: Options,
): string | null {
  const support = strategy.supports(target, options);
  return support.ok ? null : support.reason;
}

/**
 * The default selection: every layer with a kernel (a weight named `…kernel`: convolutions of any kind and
 * `Dense`), so that the layers surgery or the strategy refuses are listed in `skipped` with the reason, and
 * weightless layers and batch norms are not.
 */
function hasKernel(target: TargetLayer): boolean {
  return target.layer.weights.some((w) => /kernel$/.test(w.originalName));
}

function sameShape(a: readonly (number | null)[], b: readonly (number | null)[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Rebuilds the graph around the replacements (every other layer copied with its weights). A nested sub-model
 * holding a replaced layer is rebuilt the same way (as a functional model of the same name), then called where
 * it was; the others are copied whole.
 */
function rebuild<Options>(
  model: LayersModel,
  strategy: DecompositionStrategy<Options>,
  plans: Map<Layer, PlannedRewrite<Options>>,
  init: InitMode,
): { model: LayersModel; report: LayerReplacement<Options>[] } {
  const changed = new Set<Layer>([...plans.values()].flatMap((plan) => plan.placed.containers));
  const report: LayerReplacement<Options>[] = [];
  const rebuildLevel = (graph: LayersModel, prefix: string): LayersModel => {
    // Names in use in the new graph: every original name, until its layer is replaced.
    const taken = new Set(graph.layers.map((l) => l.name));
    return rebuildGraph(graph, (layer, node, layerInputs, built) => {
      if (isNestedModel(layer) && changed.has(layer)) {
        const inner = rebuildLevel(graphOf(layer), `${prefix}${layer.name}${PATH_SEPARATOR}`);
        built.push(inner);
        return callLike(inner, node, layerInputs);
      }
      const plan = plans.get(layer);
      if (plan === undefined) return undefined;
      // The strategy names the replacements after the layer's own name, inside the sub-model it is in.
      const target = prefix === '' ? plan.target : { ...plan.target, name: layer.name };
      const decomposition = strategy.decompose(target, plan.options, { init, seed: plan.seed });
      // Before the replacements are built: regularisers and constraints are attached to weights at build time.
      // From what the strategy rewrote: the layer, or its view's Conv2D (which holds the original's settings).
      const notes = carryOver(plan.target.layer, decomposition.layers);
      if (!layer.trainable) for (const replacement of decomposition.layers) replacement.trainable = false;
      const stock = plan.view?.stockParts() ?? { before: [], after: [] };
      const expected = plan.view?.outputShape ?? node.outputTensors[0]!.shape;
      let output: SymbolicTensor;
      try {
        const inputs = insertStock(stock.before, layerInputs, node, taken, built, layer.name);
        const replaced = insertDecomposition(
          strategy,
          target,
          decomposition,
          inputs,
          node,
          taken,
          built,
          expected,
        );
        [output] = insertStock(stock.after, [replaced], node, taken, built, layer.name) as [SymbolicTensor];
      } finally {
        dispose(
          [
            ...(decomposition.weights ?? []),
            ...[...stock.before, ...stock.after].map((p) => p.weights),
          ].flat(),
        );
      }
      if (plan.view?.note !== undefined) notes.push(plan.view.note);
      if (plan.shape.perOutputPixel) {
        notes.push(
          'the spatial size of its input is unknown, so `before` and `after` count MACs per output pixel, not per image',
        );
      }
      const kept = plan.view?.keptCost ?? { params: 0, forwardMacs: 0, backwardMacs: 0 };
      const names = (parts: readonly { name: string }[]) => parts.map((l) => `${prefix}${l.name}`);
      report.push({
        layer: plan.target.name,
        className: plan.placed.layer.getClassName(),
        replacements: [
          ...names(stock.before.map((p) => p.layer)),
          ...names(decomposition.layers),
          ...names(stock.after.map((p) => p.layer)),
        ],
        options: plan.options,
        seed: plan.seed,
        ...(decomposition.info === undefined ? {} : { info: decomposition.info }),
        ...(notes.length === 0 ? {} : { notes }),
        before: addCosts(kept, convCost(plan.shape)),
        after: addCosts(kept, decomposition.cost ?? strategy.cost(plan.shape, plan.options)),
      });
      return [output];
    });
  };
  return { model: rebuildLevel(model, ''), report };
}

/**
 * Applies the stock layers of a {@link Conv2DView} (before or after the strategy's) in sequence, under names not
 * in use, and sets their weights.
 */
function insertStock(
  parts: readonly StockPart[],
  inputs: SymbolicTensor[],
  node: GraphNode,
  taken: Set<string>,
  built: Layer[],
  layerName: string,
): SymbolicTensor[] {
  let current = inputs;
  for (const { layer, weights } of parts) {
    if (taken.has(layer.name)) {
      throw new UnsupportedModelError(
        layerName,
        `surgery names the ${layer.getClassName()} it puts in its place '${layer.name}', which the model already uses; rename that layer`,
      );
    }
    taken.add(layer.name);
    current = callLike(layer, node, current);
    built.push(layer);
    if (weights.length > 0) layer.setWeights(weights);
  }
  return current;
}

/**
 * Applies the decomposition's layers in sequence, checks names and that they give `expected` (the layer's output
 * shape, or that of its view's Conv2D), and sets their initial weights.
 */
function insertDecomposition<Options>(
  strategy: DecompositionStrategy<Options>,
  target: TargetLayer,
  decomposition: Decomposition,
  layerInputs: SymbolicTensor[],
  node: GraphNode,
  taken: Set<string>,
  built: Layer[],
  expected: readonly (number | null)[],
): SymbolicTensor {
  const invalid = (reason: string) => new InvalidDecompositionError(strategy.name, target.name, reason);
  if (decomposition.layers.length === 0) throw invalid('it has no layers');
  if ((decomposition.weights?.length ?? 0) > decomposition.layers.length) {
    throw invalid(
      `it has weights for ${decomposition.weights?.length} layers but only ${decomposition.layers.length} layers`,
    );
  }
  // The replaced layer's own name is free again: a replacement may keep it (the others must differ).
  taken.delete(target.name);
  for (const replacement of decomposition.layers) {
    if (taken.has(replacement.name)) {
      throw invalid(
        `layer name '${replacement.name}' is already used in the model (give each replacement a unique name)`,
      );
    }
    taken.add(replacement.name);
  }
  let current = layerInputs;
  for (const [i, replacement] of decomposition.layers.entries()) {
    current = callLike(replacement, node, current);
    built.push(replacement);
    const weights = decomposition.weights?.[i] ?? [];
    if (weights.length === 0) continue;
    try {
      replacement.setWeights(weights as Tensor[]);
    } catch (error) {
      throw invalid(`the weights of '${replacement.name}' do not fit it (${(error as Error).message})`);
    }
  }
  if (current.length !== 1 || !sameShape(current[0]!.shape, expected)) {
    throw invalid(
      `its output shape ${JSON.stringify(current.map((t) => t.shape))} differs from the layer's ${JSON.stringify(expected)}`,
    );
  }
  return current[0]!;
}

/** A layer surgery would rewrite, as {@link planStrategy} tells it. */
export interface PlannedLayer<Options = unknown> {
  /** Its name in the model (`<sub-model>/<layer>` inside a nested one). */
  layer: string;
  /** Its class name, e.g. `Conv2D` or `SeparableConv2D`. */
  className: string;
  /** The parsed options it would be rewritten with. */
  options: Options;
  /** Its cost now: what `before` of its {@link LayerReplacement} would say. */
  before: LayerCost;
  /** The replacement's cost when the strategy's `cost(shape, options)` can tell it without the weights. */
  after: LayerCost;
}

/** What {@link applyStrategy} would rewrite and skip, without building anything. */
export interface StrategyPlan<Options = unknown> {
  rewrites: PlannedLayer<Options>[];
  skipped: SkippedLayer[];
}

/**
 * What `applyStrategy(model, strategy, request)` would do, without building any layer: the layers it would
 * rewrite (with their options and costs) and those it would skip (with the reason). The same selection, the
 * same checks, the same errors (an exactly named layer the strategy cannot rewrite is an
 * `UnsupportedLayerError`); so a sensitivity scan's candidates are exactly the layers surgery rewrites,
 * whatever their class (a Conv1D or SeparableConv2D included, seen through the Conv2D they equal or contain).
 */
export function planStrategy<Options>(
  model: LayersModel,
  strategy: DecompositionStrategy<Options>,
  request: ApplyStrategyOptions = {},
): StrategyPlan<Options> {
  const { plans, skipped } = planRewrites(graphOf(model), strategy, request);
  try {
    const rewrites = [...plans.values()].map((plan) => {
      const kept = plan.view?.keptCost ?? { params: 0, forwardMacs: 0, backwardMacs: 0 };
      return {
        layer: plan.target.name,
        className: plan.placed.layer.getClassName(),
        options: plan.options,
        before: addCosts(kept, convCost(plan.shape)),
        after: addCosts(kept, strategy.cost(plan.shape, plan.options)),
      };
    });
    return { rewrites, skipped };
  } finally {
    disposeViews(plans);
  }
}

/**
 * Rewrites the selected `Conv2D` and `Dense` layers of a model with `strategy` (by default every layer the
 * strategy supports), returning a new model; every
 * other layer is cloned with copies of its weights, so the original model keeps its graph and weights and
 * shares no variable with the result. Options are parsed and support is checked for every layer before
 * anything is built, and so are the weights of the layers to rewrite: a `NonFiniteWeightsError` names the first
 * layer holding NaN or an infinity. The same (model, strategy, options, seed) always gives the same weights,
 * provided the strategy honours the seed it is handed. The replacements get the original's regularisers and
 * constraints where they mean the same, and its `trainable: false`; what could not be carried is in the
 * layer's `notes`. Layers of nested sub-models are selected and reported by path, `<sub-model>/<layer>`.
 */
export function applyStrategy<Options>(
  model: LayersModel,
  strategy: DecompositionStrategy<Options>,
  request: ApplyStrategyOptions = {},
): SurgeryResult<Options> {
  model = graphOf(model);
  const { plans, skipped } = planRewrites(model, strategy, request);
  try {
    return { ...rebuild(model, strategy, plans, request.init ?? 'trained'), skipped };
  } finally {
    disposeViews(plans);
  }
}
