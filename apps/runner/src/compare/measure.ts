import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Bytes of a saved model's weight files (`*.bin`). */
export async function weightBytes(modelDir: string): Promise<number> {
  let total = 0;
  for (const file of await readdir(modelDir)) {
    if (file.endsWith('.bin')) total += (await stat(path.join(modelDir, file))).size;
  }
  return total;
}
