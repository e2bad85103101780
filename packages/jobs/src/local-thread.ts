// A worker thread of the local executor: imports the catalogue, runs units it is sent, and reaches the
// executor's in-memory blob and checkpoint stores through messages (threads share no memory with it).
import { parentPort, workerData } from 'node:worker_threads';
import type { BlobStore } from './blobs.js';
import { loadCatalogue } from './catalogue.js';
import { checkCheckpointSize, type UnitCheckpoint } from './checkpoints.js';
import { BlobNotFoundError, BlobTooLargeError } from './errors.js';
import { failureOf } from './executor.js';
import type { BlobErrorJson, FromThread, ThreadSetup, ToThread } from './local-protocol.js';
import { executeUnit } from './unit.js';

const port = parentPort!;
const setup = workerData as ThreadSetup;
const post = (message: FromThread, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer);

let nextRequest = 0;
type Reply = Extract<ToThread, { type: 'reply' }>;
const requests = new Map<number, (reply: Reply) => void>();

/** Sends a blob or checkpoint request to the executor and waits for its reply. */
function storeRequest(
  message:
    | { type: 'blob'; op: 'put'; bytes: Uint8Array }
    | { type: 'blob'; op: 'get' | 'has' | 'delete'; id: string }
    | { type: 'checkpoint'; op: 'read'; unit: string }
    | { type: 'checkpoint'; op: 'write'; unit: string; bytes: Uint8Array },
): Promise<Reply> {
  const request = nextRequest++;
  return new Promise((resolve, reject) => {
    requests.set(request, (reply) => (reply.error ? reject(blobError(reply.error)) : resolve(reply)));
    post({ ...message, request });
  });
}

function blobError(error: BlobErrorJson): Error {
  if (error.name === 'BlobNotFoundError' && error.id !== undefined) return new BlobNotFoundError(error.id);
  if (error.name === 'BlobTooLargeError' && error.bytes !== undefined && error.maxBytes !== undefined) {
    return new BlobTooLargeError(error.bytes, error.maxBytes);
  }
  return Object.assign(new Error(error.message), { name: error.name });
}

const blobs: BlobStore = {
  maxBytes: setup.maxBlobBytes,
  async put(bytes) {
    // Checked here too, so that an oversized blob is not copied to the main thread first.
    if (bytes.byteLength > setup.maxBlobBytes)
      throw new BlobTooLargeError(bytes.byteLength, setup.maxBlobBytes);
    return (await storeRequest({ type: 'blob', op: 'put', bytes })).id!;
  },
  async get(id) {
    return (await storeRequest({ type: 'blob', op: 'get', id })).bytes!;
  },
  async has(id) {
    return (await storeRequest({ type: 'blob', op: 'has', id })).has!;
  },
  async delete(id) {
    await storeRequest({ type: 'blob', op: 'delete', id });
  },
};

/** The checkpoint of the unit `unit` (its id), kept by the executor. */
function checkpointOf(unit: string): UnitCheckpoint {
  return {
    maxBytes: setup.maxBlobBytes,
    async read() {
      return (await storeRequest({ type: 'checkpoint', op: 'read', unit })).bytes ?? null;
    },
    async write(bytes) {
      // Checked here too, so that an oversized checkpoint is not copied to the main thread first.
      checkCheckpointSize(bytes, setup.maxBlobBytes);
      await storeRequest({ type: 'checkpoint', op: 'write', unit, bytes });
    },
  };
}

const controllers = new Map<number, AbortController>();

try {
  const catalogue = await loadCatalogue(setup.catalogue);
  port.on('message', (message: ToThread) => {
    if (message.type === 'reply') {
      requests.get(message.request)?.(message);
      requests.delete(message.request);
    } else if (message.type === 'abort') {
      controllers.get(message.task)?.abort();
    } else {
      const controller = new AbortController();
      controllers.set(message.task, controller);
      const { task } = message;
      void (async () => {
        try {
          const kind = catalogue.get(message.kind, message.version);
          const result = await executeUnit(kind, message.input, {
            reportProgress: (progress) => post({ type: 'progress', task, progress }),
            signal: controller.signal,
            blobs,
            checkpoint: checkpointOf(message.unit),
          });
          post({ type: 'done', task, ok: true, result });
        } catch (error) {
          post({ type: 'done', task, ok: false, error: failureOf(error) });
        } finally {
          controllers.delete(task);
        }
      })();
    }
  });
  post({ type: 'ready' });
} catch (error) {
  post({ type: 'init-failed', error: failureOf(error) });
}
