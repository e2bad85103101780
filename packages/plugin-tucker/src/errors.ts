/** Thrown when ranks cannot be served: out of bounds for the layer, or a ratio below ranks (1, 1). */
export class TuckerRankError extends Error {
  override readonly name = 'TuckerRankError';
}

/** Thrown when a layer handed to the Tucker strategy is not one it can rewrite (see `tuckerStrategy.supports`). */
export class TuckerTargetError extends Error {
  override readonly name = 'TuckerTargetError';
}
