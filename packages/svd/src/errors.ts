import { StrategyError } from '@decompose/core';

/**
 * Base class of every error the SVD strategy throws on purpose, whose message names the problem and the fix. It
 * extends core's `StrategyError`, so callers that catch strategy errors (the `decompose` CLI among them) show
 * the message instead of a stack trace.
 */
export abstract class SvdError extends StrategyError {}

/** Thrown when a rank cannot be served: out of bounds for the layer, or a parameter budget below rank 1. */
export class SvdRankError extends SvdError {
  override readonly name = 'SvdRankError';
}

/** Thrown when a layer handed to the SVD strategy is not one it can rewrite (see `svdStrategy.supports`). */
export class SvdTargetError extends SvdError {
  override readonly name = 'SvdTargetError';
}
