/** Thrown when a rank cannot be served: out of bounds for the layer, or a parameter budget below rank 1. */
export class SvdRankError extends Error {
  override readonly name = 'SvdRankError';
}

/** Thrown when a layer handed to the SVD strategy is not one it can rewrite (see `svdStrategy.supports`). */
export class SvdTargetError extends Error {
  override readonly name = 'SvdTargetError';
}
