import { StrategyError } from '@decompose/core';

/**
 * Base class of every error the Tucker strategy throws on purpose, whose message names the problem and the fix. It
 * extends core's `StrategyError`, so callers that catch strategy errors (the `decompose` CLI among them) show
 * the message instead of a stack trace.
 */
export abstract class TuckerError extends StrategyError {}

/** Thrown when ranks cannot be served: out of bounds for the layer, or a ratio below ranks (1, 1). */
export class TuckerRankError extends TuckerError {
  override readonly name = 'TuckerRankError';
}

/** Thrown when a layer handed to the Tucker strategy is not one it can rewrite (see `tuckerStrategy.supports`). */
export class TuckerTargetError extends TuckerError {
  override readonly name = 'TuckerTargetError';
}
