import { StrategyError } from '@decompose/core';

/**
 * Base class of every error the basis strategy and its `BasisConv2D` layer throw on purpose, whose message names the problem and the fix. It
 * extends core's `StrategyError`, so callers that catch strategy errors (the `decompose` CLI among them) show
 * the message instead of a stack trace.
 */
export abstract class BasisError extends StrategyError {}

/** Thrown when a {@link BasisConv2D} is configured with values it cannot work with. */
export class BasisConfigError extends BasisError {
  override readonly name = 'BasisConfigError';
}

/** Thrown when a trained layer cannot be converted to basis form (wrong layer kind, shape or options). */
export class BasisConversionError extends BasisError {
  override readonly name = 'BasisConversionError';
}
