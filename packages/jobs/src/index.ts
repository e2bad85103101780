// Units of work run through one executor interface: this thread, worker threads, or a BullMQ queue on Redis.

export {
  type BlobStore,
  blobId,
  blobIdSchema,
  blobIdsIn,
  DEFAULT_RETENTION_SECONDS,
  MAX_BLOB_BYTES,
  memoryBlobStore,
  type RedisBlobStoreOptions,
  redisBlobStore,
} from './blobs.js';
export { type Catalogue, type CatalogueRef, catalogueOf, catalogueUrl, loadCatalogue } from './catalogue.js';
export { checkpointPrefix, type UnitCheckpoint } from './checkpoints.js';
export {
  BlobNotFoundError,
  BlobTooLargeError,
  CatalogueError,
  CheckpointTooLargeError,
  ExecutorClosedError,
  JobsError,
  JobsOptionError,
  RedisUnreachableError,
  UnitInputError,
  UnitResultError,
  UnitVersionError,
  UnitWorkerDiedError,
  UnknownUnitKindError,
} from './errors.js';
export type { Executor, RunOptions, UnitFailure, UnitOutcome } from './executor.js';
export { type LocalExecutorOptions, localExecutor } from './local.js';
export { blobPrefix, type JobData, type QueueExecutorOptions, queueExecutor } from './queue.js';
export { checkRedisUrl, probeRedis } from './redis.js';
export {
  defineUnitKind,
  isUnitKind,
  type JsonValue,
  type ResultOf,
  type Unit,
  type UnitContext,
  type UnitKind,
  type UnitKindDefinition,
  type UnitOptions,
  type UnitProgress,
  unitId,
} from './unit.js';
export { type FinishedJob, type QueueWorker, type QueueWorkerOptions, runQueueWorker } from './worker.js';
