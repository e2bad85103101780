import * as tf from '@tensorflow/tfjs-core';
import { fileSystem } from './file-system.js';

/** URL scheme the router answers: `file://dir` (relative) or `file:///abs/dir`. */
export const FILE_SCHEME = 'file://';

let registered = false;

function fileRouter(url: string | string[]): tf.io.IOHandler | null {
  // tfjs-node registers its own file:// handler together with its backend; two handlers make model.save fail.
  if (tf.findBackend('tensorflow')) return null;
  if (typeof url !== 'string' || !url.startsWith(FILE_SCHEME)) return null;
  return fileSystem(url.slice(FILE_SCHEME.length));
}

/**
 * Lets `model.save('file://dir')` and `tf.loadLayersModel('file://dir')` use {@link fileSystem} when the
 * tensorflow (tfjs-node) backend, which brings its own `file://` handler, is not loaded. Idempotent;
 * `initEngine` calls it.
 */
export function registerFileRouter(): void {
  if (registered) return;
  registered = true;
  // The router type says IOHandler, but tfjs treats a null result as "not mine".
  const router = fileRouter as Parameters<typeof tf.io.registerSaveRouter>[0];
  tf.io.registerSaveRouter(router);
  tf.io.registerLoadRouter(router);
}
