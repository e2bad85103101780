/**
 * Base class of every error this package throws on purpose (options it cannot build), whose message names the
 * problem and the fix. Catch it to handle all of them at once; anything else is a bug.
 */
export abstract class ResNetError extends Error {}
