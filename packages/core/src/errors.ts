/**
 * Base class of every error this package throws on purpose (bad options, selections, models or plugins), whose
 * message names the problem and the fix. Catch it to handle all of core's typed errors, and those of the
 * strategies ({@link StrategyError}), at once; anything else is a bug.
 */
export abstract class CoreError extends Error {}

/**
 * Base class for the errors a strategy package throws on purpose: a layer or options it cannot serve, with a
 * message that names the problem and the fix. Strategies, plugins included, extend it for their user-facing
 * errors (`class MyRankError extends StrategyError { override readonly name = 'MyRankError' }`), so that
 * callers such as the `decompose` CLI show their message instead of a stack trace.
 */
export abstract class StrategyError extends CoreError {}

/** One problem found in a strategy's options, as the strategy's `optionsSchema` reported it. */
export interface OptionIssue {
  /** Dotted path of the offending field (`(root)` for the options value itself). */
  field: string;
  /** The value found there (`undefined` when it is missing). */
  value: unknown;
  /** What the schema expected, in its own words. */
  expected: string;
}

function show(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Options given to a strategy do not satisfy its `optionsSchema`. */
export class StrategyOptionsError extends CoreError {
  override readonly name = 'StrategyOptionsError';
  constructor(
    readonly strategy: string,
    /** The layer the options were meant for, or null for the options shared by every layer. */
    readonly layer: string | null,
    readonly issues: readonly OptionIssue[],
  ) {
    const where = layer === null ? '' : ` for layer '${layer}'`;
    const lines = issues.map((i) => `${i.field}: got ${show(i.value)}, expected ${i.expected}`);
    super(`Invalid options for strategy '${strategy}'${where}: ${lines.join('; ')}.`);
  }
}

/** A layer name or pattern in a selection matches no layer of the model. */
export class UnknownLayerError extends CoreError {
  override readonly name = 'UnknownLayerError';
  constructor(
    /** The name or glob that matched nothing. */
    readonly selector: string,
    /** The model's layer names closest to `selector`. */
    readonly closeNames: readonly string[],
  ) {
    const hint =
      closeNames.length > 0
        ? ` Did you mean: ${closeNames.join(', ')}?`
        : ' Call listTargets(model) to see the layer names.';
    super(`No layer of the model matches '${selector}'.${hint}`);
  }
}

/** An explicitly named layer cannot be rewritten by the strategy. */
export class UnsupportedLayerError extends CoreError {
  override readonly name = 'UnsupportedLayerError';
  constructor(
    readonly layer: string,
    readonly strategy: string,
    readonly reason: string,
  ) {
    super(
      `Strategy '${strategy}' cannot rewrite layer '${layer}': ${reason}. Remove it from the selection, or select layers with a glob to skip such layers.`,
    );
  }
}

/** The model's graph has a shape surgery does not handle (shared layers, unregistered classes). */
export class UnsupportedModelError extends CoreError {
  override readonly name = 'UnsupportedModelError';
  constructor(
    /** The layer where the problem was found. */
    readonly layer: string,
    readonly reason: string,
  ) {
    super(`Cannot rebuild the model at layer '${layer}': ${reason}.`);
  }
}

/** A strategy returned a decomposition that does not fit in place of the original layer. */
export class InvalidDecompositionError extends CoreError {
  override readonly name = 'InvalidDecompositionError';
  constructor(
    readonly strategy: string,
    readonly layer: string,
    readonly reason: string,
  ) {
    super(`Strategy '${strategy}' returned an invalid decomposition of layer '${layer}': ${reason}.`);
  }
}

/** A strategy name is already registered. */
export class DuplicateStrategyError extends CoreError {
  override readonly name = 'DuplicateStrategyError';
  constructor(readonly strategy: string) {
    super(
      `A strategy named '${strategy}' is already registered; strategy names must be unique (rename one of them).`,
    );
  }
}

/** No strategy of that name is registered. */
export class UnknownStrategyError extends CoreError {
  override readonly name = 'UnknownStrategyError';
  constructor(
    readonly strategy: string,
    readonly known: readonly string[],
  ) {
    const list = known.length > 0 ? known.join(', ') : 'none registered';
    super(`Unknown strategy '${strategy}'. Known strategies: ${list}.`);
  }
}

/** A plugin module could not be imported (not found, or its top-level code threw). */
export class PluginImportError extends CoreError {
  override readonly name = 'PluginImportError';
  constructor(
    readonly specifier: string,
    override readonly cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`Could not import strategy plugin '${specifier}': ${reason}`, { cause });
  }
}

/** A plugin module was imported but does not export valid strategies. */
export class InvalidPluginError extends CoreError {
  override readonly name = 'InvalidPluginError';
  constructor(
    readonly specifier: string,
    /** Every problem found, e.g. `strategy.cost: expected a function, got undefined`. */
    readonly problems: readonly string[],
  ) {
    super(
      `Strategy plugin '${specifier}' does not export a valid DecompositionStrategy:\n  - ${problems.join('\n  - ')}\nSee "Writing a strategy" in the @decompose/core README.`,
    );
  }
}

/** A layer selection that cannot be carried out as given (nothing selected, options for unselected layers). */
export class SelectionError extends CoreError {
  override readonly name = 'SelectionError';
  constructor(readonly reason: string) {
    super(`Invalid layer selection: ${reason}.`);
  }
}

/**
 * A layer selected for rewriting holds NaN or infinite weights (a damaged weights file, or a model saved after
 * training diverged); surgery refuses it before decomposing anything.
 */
export class NonFiniteWeightsError extends CoreError {
  override readonly name = 'NonFiniteWeightsError';
  constructor(
    readonly layer: string,
    /** The weight's name, e.g. `stage1.block1.conv1/kernel`. */
    readonly weight: string,
    /** How many of its values are NaN or infinite. */
    readonly count: number,
    /** The position of the first such value in the weight (row-major). */
    readonly index: number,
    /** That value: NaN, Infinity or -Infinity. */
    readonly value: number,
  ) {
    super(
      `Layer '${layer}' holds non-finite weights: ${count} value${count === 1 ? '' : 's'} of '${weight}' ` +
        `${count === 1 ? 'is' : 'are'} NaN or infinite (the first, at index ${index}, is ${value}). The weights file ` +
        'is damaged or the model was saved after training diverged: retrain the model, or re-export it from a good ' +
        'checkpoint.',
    );
  }
}

/**
 * `exportStock` met a layer of a class that is neither a stock tfjs-layers class nor lowerable: no lowering was
 * given for it, the layer has no `lowerToStock()`, and no strategy handed to `exportStock` has a `lowerings` entry
 * for its class.
 */
export class UnloweredLayerError extends CoreError {
  override readonly name = 'UnloweredLayerError';
  constructor(
    readonly layer: string,
    readonly className: string,
  ) {
    super(
      `Layer '${layer}' is a ${className}, a custom layer class with no lowering to stock layers, so the export ` +
        `could not load without it. Give ${className} a lowerToStock() method, add a lowerings entry for it to the ` +
        `strategy that creates it (and pass that strategy, or for the CLI import its plugin), or pass ` +
        `lowerings: { ${className}: ... } to exportStock.`,
    );
  }
}

/** A lowering returned stock layers that do not fit in place of the custom layer. */
export class InvalidLoweringError extends CoreError {
  override readonly name = 'InvalidLoweringError';
  constructor(
    readonly layer: string,
    readonly className: string,
    readonly reason: string,
  ) {
    super(
      `The lowering of ${className} layer '${layer}' to stock layers is invalid: ${reason}. Fix the lowering.`,
    );
  }
}
