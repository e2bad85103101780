/**
 * Base class of every error the benchmark scripts throw on purpose (a bad flag value, a foreign work directory),
 * whose message names the problem and the fix: the scripts print it without a stack trace.
 */
export abstract class BenchError extends Error {}
