import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** Options of {@link writeSyntheticImageFolder}. */
export interface SyntheticFolderOptions {
  /** Class (subfolder) names (default `['a', 'b']`). */
  readonly classes?: readonly string[];
  /** Images per class (default 4). */
  readonly perClass?: number;
  /** `[height, width]` of the images (default `[16, 16]`). */
  readonly size?: readonly [number, number];
  /** Write every other image as a JPEG, the rest as PNGs (default true). */
  readonly jpeg?: boolean;
  /** Write `train/` and `test/` folders (each with `perClass` images a class) instead of one (default false). */
  readonly split?: boolean;
}

/**
 * Writes a small image folder of learnable synthetic images (class `k` is brightest in channel `k mod 3`),
 * as PNG and JPEG files, for examples and tests. Returns the files written.
 */
export async function writeSyntheticImageFolder(
  dir: string,
  options: SyntheticFolderOptions = {},
): Promise<string[]> {
  const {
    classes = ['a', 'b'],
    perClass = 4,
    size = [16, 16],
    jpeg: withJpeg = true,
    split = false,
  } = options;
  const [height, width] = size;
  const written: string[] = [];
  for (const part of split ? ['train', 'test'] : ['']) {
    for (const [label, name] of classes.entries()) {
      const folder = path.join(dir, part, name);
      await mkdir(folder, { recursive: true });
      for (let i = 0; i < perClass; i++) {
        const data = Buffer.alloc(height * width * 4);
        for (let p = 0; p < height * width; p++) {
          for (let c = 0; c < 3; c++) {
            const noise = (p * 31 + i * 17 + c * 7) % 64;
            data[p * 4 + c] = (c === label % 3 ? 160 : 32) + noise;
          }
          data[p * 4 + 3] = 255;
        }
        const asJpeg = withJpeg && i % 2 === 1;
        const file = path.join(folder, `${name}-${i}.${asJpeg ? 'jpg' : 'png'}`);
        const bytes = asJpeg
          ? jpeg.encode({ data, width, height }, 95).data
          : PNG.sync.write(Object.assign(new PNG({ width, height }), { data }));
        await writeFile(file, bytes);
        written.push(file);
      }
    }
  }
  return written;
}
