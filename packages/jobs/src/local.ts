import { Worker } from 'node:worker_threads';
import { type BlobStore, MAX_BLOB_BYTES, memoryBlobStore } from './blobs.js';
import { type Catalogue, type CatalogueRef, loadCatalogue } from './catalogue.js';
import { type CheckpointStore, memoryCheckpointStore, unitCheckpoint } from './checkpoints.js';
import { ExecutorClosedError, JobsOptionError, UnitWorkerDiedError } from './errors.js';
import { type Executor, failureOf, type RunOptions, type UnitOutcome } from './executor.js';
import type { BlobErrorJson, FromThread, ThreadSetup, ToThread } from './local-protocol.js';
import {
  checkResult,
  dispatchOrder,
  executeUnit,
  type JsonValue,
  type PreparedUnit,
  prepareUnit,
  type ResultOf,
  type Unit,
  type UnitProgress,
} from './unit.js';

/** Options of {@link localExecutor}. */
export interface LocalExecutorOptions {
  /**
   * The catalogue module worker threads import (needed when `threads` ≥ 1). With `threads: 0` units run
   * with the kinds they carry, and a given catalogue only checks that their kinds are in it.
   */
  catalogue?: CatalogueRef;
  /** 0 (the default): every unit runs in this thread, one after the other; n ≥ 1: n worker threads. */
  threads?: number;
  /**
   * The largest blob, and unit checkpoint, the in-memory stores take (default and cap: {@link MAX_BLOB_BYTES},
   * as on Redis).
   */
  maxBlobBytes?: number;
}

/**
 * The local back end: units run in this thread (`threads: 0`) or in worker threads that import the
 * catalogue. Blobs and unit checkpoints live in this process's memory (a unit run again, after it failed or
 * was aborted, reads the checkpoint it wrote). Throws {@link CatalogueError} when the catalogue does not load.
 */
export async function localExecutor(options: LocalExecutorOptions = {}): Promise<Executor> {
  const threads = options.threads ?? 0;
  if (!Number.isInteger(threads) || threads < 0) {
    throw new JobsOptionError(
      'threads',
      `must be a whole number ≥ 0 (0 runs units in this thread), not ${threads}`,
    );
  }
  const maxBytes = Math.min(options.maxBlobBytes ?? MAX_BLOB_BYTES, MAX_BLOB_BYTES);
  if (threads > 0 && options.catalogue === undefined) {
    throw new JobsOptionError(
      'catalogue',
      'is needed with threads ≥ 1: worker threads import the unit kinds from it',
    );
  }
  const catalogue = options.catalogue === undefined ? undefined : await loadCatalogue(options.catalogue);
  const blobs = memoryBlobStore({ maxBytes });
  const checkpoints = memoryCheckpointStore({ maxBytes });
  const pool =
    threads > 0 && catalogue !== undefined
      ? new ThreadPool(threads, catalogue.url, blobs, checkpoints)
      : undefined;
  let closed = false;

  return {
    blobs,
    async run<U extends Unit>(units: readonly U[], runOptions: RunOptions<U> = {}) {
      if (closed) throw new ExecutorClosedError();
      return runEach(
        units,
        runOptions,
        catalogue,
        threads > 0 ? threads : 1,
        async (prepared, unit, onProgress, signal) => {
          const result =
            pool !== undefined
              ? await pool.run(prepared, onProgress, signal)
              : await executeUnit(unit.kind, prepared.input, {
                  reportProgress: onProgress,
                  signal,
                  blobs,
                  checkpoint: unitCheckpoint(checkpoints, prepared.id),
                });
          await checkpoints.clear(prepared.id);
          return result;
        },
      );
    },
    async close() {
      closed = true;
      await pool?.close();
    },
  };
}

type Execute<U extends Unit> = (
  prepared: PreparedUnit,
  unit: U,
  onProgress: (progress: UnitProgress) => void,
  signal: AbortSignal,
) => Promise<JsonValue>;

/** Prepares, runs (at most `parallel` at once) and checks every unit; rejects only when the run is aborted. */
async function runEach<U extends Unit>(
  units: readonly U[],
  { onProgress, onResult, signal }: RunOptions<U>,
  catalogue: Catalogue | undefined,
  parallel: number,
  execute: Execute<U>,
): Promise<UnitOutcome<ResultOf<U>>[]> {
  signal?.throwIfAborted();
  const outcomes = new Array<UnitOutcome<ResultOf<U>>>(units.length);
  const controller = new AbortController();
  const abort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', abort, { once: true });
  const order = dispatchOrder(units);
  let next = 0;
  const lane = async () => {
    while (next < order.length && !controller.signal.aborted) {
      const index = order[next++]!;
      const unit = units[index]!;
      let outcome: UnitOutcome<ResultOf<U>>;
      try {
        const prepared = prepareUnit(unit);
        catalogue?.get(prepared.kind, prepared.version);
        const json = await execute(
          prepared,
          unit,
          (progress) => onProgress?.(index, progress, unit),
          controller.signal,
        );
        outcome = { ok: true, result: checkResult(unit.kind, json) as ResultOf<U> };
      } catch (error) {
        if (controller.signal.aborted) break;
        outcome = { ok: false, error: failureOf(error) };
      }
      outcomes[index] = outcome;
      onResult?.(index, outcome, unit);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, units.length) }, lane));
  } finally {
    signal?.removeEventListener('abort', abort);
  }
  signal?.throwIfAborted();
  return outcomes;
}

interface Task {
  prepared: PreparedUnit;
  onProgress: (progress: UnitProgress) => void;
  resolve: (result: JsonValue) => void;
  reject: (error: Error) => void;
}

/** One worker thread: runs one task at a time; replaced by a new one when it dies. */
class Thread {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  task: { id: number; task: Task } | undefined;

  constructor(
    setup: ThreadSetup,
    stores: { blobs: BlobStore; checkpoints: CheckpointStore },
    onExit: (thread: Thread) => void,
  ) {
    const script = threadScript();
    this.worker = new Worker(script.url, { workerData: setup, execArgv: script.execArgv });
    this.worker.unref();
    let settle: { resolve: () => void; reject: (error: Error) => void } | undefined;
    this.ready = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    const fail = (reason: string) => {
      const running = this.task;
      this.task = undefined;
      settle?.reject(new UnitWorkerDiedError('(starting)', reason));
      running?.task.reject(new UnitWorkerDiedError(running.task.prepared.kind, reason));
      onExit(this);
    };
    this.worker.on('error', (error) => fail(error.message));
    this.worker.on('exit', (code) => fail(`the thread exited with code ${code}`));
    this.worker.on('message', (message: FromThread) => {
      if (message.type === 'ready') settle?.resolve();
      else if (message.type === 'init-failed') {
        settle?.reject(Object.assign(new Error(message.error.message), { name: message.error.name }));
      } else if (message.type === 'blob' || message.type === 'checkpoint') void this.store(message, stores);
      else if (this.task?.id === message.task) {
        const { task } = this.task;
        if (message.type === 'progress') task.onProgress(message.progress);
        else {
          this.task = undefined;
          if (message.ok) task.resolve(message.result);
          else task.reject(Object.assign(new Error(message.error.message), { name: message.error.name }));
        }
      }
    });
  }

  post(message: ToThread, transfer?: ArrayBuffer[]) {
    this.worker.postMessage(message, transfer);
  }

  /** Answers a thread's request to the blob or checkpoint store. */
  private async store(
    message: Extract<FromThread, { type: 'blob' | 'checkpoint' }>,
    { blobs, checkpoints }: { blobs: BlobStore; checkpoints: CheckpointStore },
  ) {
    const { request } = message;
    try {
      if (message.type === 'checkpoint') {
        if (message.op === 'read') {
          const bytes = await checkpoints.read(message.unit);
          this.post({ type: 'reply', request, ...(bytes === null ? {} : { bytes }) });
        } else {
          await checkpoints.write(message.unit, message.bytes);
          this.post({ type: 'reply', request });
        }
      } else if (message.op === 'put')
        this.post({ type: 'reply', request, id: await blobs.put(message.bytes) });
      else if (message.op === 'get')
        this.post({ type: 'reply', request, bytes: await blobs.get(message.id) });
      else if (message.op === 'has') this.post({ type: 'reply', request, has: await blobs.has(message.id) });
      else {
        await blobs.delete(message.id);
        this.post({ type: 'reply', request });
      }
    } catch (error) {
      const e = error as Error & Partial<BlobErrorJson>;
      const json: BlobErrorJson = { name: e.name, message: e.message };
      if (typeof e.id === 'string') json.id = e.id;
      if (typeof e.bytes === 'number') json.bytes = e.bytes;
      if (typeof e.maxBytes === 'number') json.maxBytes = e.maxBytes;
      this.post({ type: 'reply', request, error: json });
    }
  }
}

class ThreadPool {
  private readonly threads: Thread[] = [];
  private readonly idle: Thread[] = [];
  private readonly waiting: ((thread: Thread) => void)[] = [];
  private nextTask = 0;
  private closing = false;

  constructor(
    size: number,
    private readonly catalogueUrl: string,
    private readonly blobs: BlobStore,
    private readonly checkpoints: CheckpointStore,
  ) {
    for (let i = 0; i < size; i++) this.spawn();
  }

  private spawn() {
    const thread = new Thread(
      { catalogue: this.catalogueUrl, maxBlobBytes: this.blobs.maxBytes },
      { blobs: this.blobs, checkpoints: this.checkpoints },
      (dead) => {
        const at = this.threads.indexOf(dead);
        if (at < 0) return;
        this.threads.splice(at, 1);
        const idleAt = this.idle.indexOf(dead);
        if (idleAt >= 0) this.idle.splice(idleAt, 1);
        if (!this.closing) this.spawn();
      },
    );
    // A thread whose catalogue fails to load is not offered; its error reaches the task that waits on it.
    thread.ready.catch(() => {});
    this.threads.push(thread);
    this.release(thread);
  }

  private release(thread: Thread) {
    const waiter = this.waiting.shift();
    if (waiter) waiter(thread);
    else this.idle.push(thread);
  }

  private acquire(): Promise<Thread> {
    const thread = this.idle.shift();
    return thread ? Promise.resolve(thread) : new Promise((resolve) => this.waiting.push(resolve));
  }

  async run(
    prepared: PreparedUnit,
    onProgress: (progress: UnitProgress) => void,
    signal: AbortSignal,
  ): Promise<JsonValue> {
    const thread = await this.acquire();
    const id = this.nextTask++;
    const abort = () => thread.post({ type: 'abort', task: id });
    try {
      await thread.ready;
      // Referenced while it works, so that the process does not exit with a unit half done.
      thread.worker.ref();
      return await new Promise<JsonValue>((resolve, reject) => {
        thread.task = { id, task: { prepared, onProgress, resolve, reject } };
        signal.addEventListener('abort', abort, { once: true });
        thread.post({
          type: 'run',
          task: id,
          kind: prepared.kind,
          version: prepared.version,
          input: prepared.input,
          unit: prepared.id,
        });
      });
    } finally {
      signal.removeEventListener('abort', abort);
      thread.worker.unref();
      if (this.threads.includes(thread)) this.release(thread);
    }
  }

  async close() {
    this.closing = true;
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }
}

/**
 * The thread's entry: the compiled `local-thread.js` beside this module, or, when this module runs from its
 * TypeScript source (under vitest), an entry that registers tsx first, with the workspace's
 * `@decompose/source` condition so that the catalogue's imports resolve to sources too.
 */
function threadScript(): { url: URL; execArgv: string[] | undefined } {
  if (import.meta.url.endsWith('.ts')) {
    return {
      url: new URL('./source/thread.mjs', import.meta.url),
      execArgv: ['--conditions=@decompose/source'],
    };
  }
  return { url: new URL('./local-thread.js', import.meta.url), execArgv: undefined };
}
