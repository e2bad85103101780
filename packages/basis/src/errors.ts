/** Thrown when a {@link BasisConv2D} is configured with values it cannot work with. */
export class BasisConfigError extends Error {
  override readonly name = 'BasisConfigError';
}

/** Thrown when a trained layer cannot be converted to basis form (wrong layer kind, shape or options). */
export class BasisConversionError extends Error {
  override readonly name = 'BasisConversionError';
}
