// Messages between a local executor and its worker threads.
import type { UnitFailure } from './executor.js';
import type { JsonValue, UnitProgress } from './unit.js';

export type ToThread =
  | { type: 'run'; task: number; kind: string; version: string; input: JsonValue; unit: string }
  | { type: 'abort'; task: number }
  | {
      /** The answer to a blob or checkpoint request (`bytes` absent: the unit has no checkpoint). */
      type: 'reply';
      request: number;
      bytes?: Uint8Array;
      id?: string;
      has?: boolean;
      error?: BlobErrorJson;
    };

export type FromThread =
  | { type: 'ready' }
  | { type: 'init-failed'; error: UnitFailure }
  | { type: 'progress'; task: number; progress: UnitProgress }
  | { type: 'done'; task: number; ok: true; result: JsonValue }
  | { type: 'done'; task: number; ok: false; error: UnitFailure }
  | { type: 'blob'; request: number; op: 'put'; bytes: Uint8Array }
  | { type: 'blob'; request: number; op: 'get' | 'has' | 'delete'; id: string }
  | { type: 'checkpoint'; request: number; op: 'read'; unit: string }
  | { type: 'checkpoint'; request: number; op: 'write'; unit: string; bytes: Uint8Array };

/** A blob or checkpoint store error, with what it takes to throw the same class again in the thread. */
export interface BlobErrorJson {
  name: string;
  message: string;
  id?: string;
  bytes?: number;
  maxBytes?: number;
}

export interface ThreadSetup {
  catalogue: string;
  maxBlobBytes: number;
}
