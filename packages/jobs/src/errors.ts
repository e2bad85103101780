/** Base class of every error this package throws, so callers can catch all job problems at once. */
export abstract class JobsError extends Error {}

/** A unit's input does not match its kind's input schema; it was not enqueued or run. */
export class UnitInputError extends JobsError {
  override readonly name = 'UnitInputError';
  constructor(
    readonly kind: string,
    readonly problem: string,
  ) {
    super(
      `Input of unit kind '${kind}' is invalid: ${problem}. Build the input the kind's input schema describes.`,
    );
  }
}

/** A unit's result does not match its kind's versioned result schema (or is not JSON). */
export class UnitResultError extends JobsError {
  override readonly name = 'UnitResultError';
  constructor(
    readonly kind: string,
    readonly version: string,
    readonly problem: string,
  ) {
    super(
      `Result of unit kind '${kind}' version ${version} does not match its result schema: ${problem}. ` +
        "Fix the kind's run function, or bump its version together with the result schema.",
    );
  }
}

/** A unit names a kind the catalogue (of a worker thread, a queue worker or the executor) does not export. */
export class UnknownUnitKindError extends JobsError {
  override readonly name = 'UnknownUnitKindError';
  constructor(
    readonly kind: string,
    readonly known: readonly string[],
  ) {
    super(
      `Unit kind '${kind}' is not in the catalogue (it exports: ${known.join(', ') || 'none'}). ` +
        'Export the kind from the catalogue module the executor and the workers load.',
    );
  }
}

/** A unit's kind has another version in the catalogue that runs it (an outdated worker, or coordinator). */
export class UnitVersionError extends JobsError {
  override readonly name = 'UnitVersionError';
  constructor(
    readonly kind: string,
    readonly wanted: string,
    readonly found: string,
  ) {
    super(
      `Unit kind '${kind}' is wanted at version ${wanted}, but the catalogue has version ${found}. ` +
        'Run the coordinator and the workers from the same build of the catalogue.',
    );
  }
}

/** The catalogue module cannot be loaded, or exports no unit kinds, or two with the same name. */
export class CatalogueError extends JobsError {
  override readonly name = 'CatalogueError';
  constructor(
    readonly catalogue: string,
    readonly problem: string,
  ) {
    super(
      `Catalogue ${catalogue} ${problem}. A catalogue is a module (a file URL or an absolute path, e.g. ` +
        "new URL('./catalogue.js', import.meta.url) or import.meta.resolve('pkg/catalogue')) that exports " +
        'unit kinds made with defineUnitKind.',
    );
  }
}

/** Redis at the given URL cannot be reached (refused, timed out, or the URL is malformed). */
export class RedisUnreachableError extends JobsError {
  override readonly name = 'RedisUnreachableError';
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(
      `Cannot reach Redis at ${url}: ${reason}. Start redis-server there, or fix the URL ` +
        '(redis://HOST:PORT[/DB]).',
    );
  }
}

/** A blob is larger than the store takes (Redis strings hold at most 512 MB). */
export class BlobTooLargeError extends JobsError {
  override readonly name = 'BlobTooLargeError';
  constructor(
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(
      `A blob of ${bytes} bytes is larger than the blob store's limit of ${maxBytes} bytes. ` +
        'Split it into several blobs (e.g. one per weight file) or make it smaller.',
    );
  }
}

/** A unit wrote a checkpoint larger than its back end keeps (the blob limit: Redis strings hold at most 512 MB). */
export class CheckpointTooLargeError extends JobsError {
  override readonly name = 'CheckpointTooLargeError';
  constructor(
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(
      `A unit's checkpoint of ${bytes} bytes is larger than the limit of ${maxBytes} bytes. ` +
        'Leave out of it what the unit can recompute, or raise maxBlobBytes (at most 512 MB).',
    );
  }
}

/**
 * No blob with this id is in the store (never put, deleted, gone after the queue's retention, or another Redis
 * database or queue).
 */
export class BlobNotFoundError extends JobsError {
  override readonly name = 'BlobNotFoundError';
  constructor(readonly id: string) {
    super(
      `No blob ${id} in the blob store. Put it with executor.blobs.put (same Redis URL and queue) before ` +
        "running units that name it; on a queue, a blob nobody used for the queue's retention is gone.",
    );
  }
}

/** A thread or process that ran a unit died before it finished (out of memory, killed, a native crash). */
export class UnitWorkerDiedError extends JobsError {
  override readonly name = 'UnitWorkerDiedError';
  constructor(
    readonly kind: string,
    readonly reason: string,
  ) {
    super(
      `The worker running a unit of kind '${kind}' died: ${reason}. See the worker's output for its error.`,
    );
  }
}

/** An executor option out of range (threads, concurrency, attempts, URL). */
export class JobsOptionError extends JobsError {
  override readonly name = 'JobsOptionError';
  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(`Option '${option}' ${problem}.`);
  }
}

/** The executor was closed; make a new one. */
export class ExecutorClosedError extends JobsError {
  override readonly name = 'ExecutorClosedError';
  constructor() {
    super('The executor is closed. Create a new one to run more units.');
  }
}
