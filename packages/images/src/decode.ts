import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { ImageDecodeError } from './errors.js';

/** A decoded image: `width × height` RGBA pixels, 8 bits a channel. */
export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  /** `height × width × 4` bytes, row-major, RGBA interleaved. */
  readonly data: Uint8Array;
}

const isPng = (b: Uint8Array) =>
  b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** Largest image decoded, in megapixels: far beyond a training image, small enough to stop a bad header early. */
const MAX_MEGAPIXELS = 100;

/**
 * Decodes a PNG or JPEG (told apart by their first bytes, not the file name) into RGBA: grey images come
 * out with R = G = B, images without alpha with alpha 255; 16-bit PNGs are scaled to 8 bits.
 *
 * @param path - names the file in errors.
 * @throws ImageDecodeError if the bytes are neither PNG nor JPEG, or are damaged.
 */
export function decodeImage(bytes: Uint8Array, path: string): RgbaImage {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    if (isPng(bytes)) decoded = PNG.sync.read(buffer);
    else if (isJpeg(bytes)) {
      decoded = jpeg.decode(buffer, {
        useTArray: true,
        formatAsRGBA: true,
        maxResolutionInMP: MAX_MEGAPIXELS,
      });
    } else throw new ImageDecodeError(path, 'it is neither a PNG nor a JPEG (its first bytes say so)');
  } catch (error) {
    if (error instanceof ImageDecodeError) throw error;
    throw new ImageDecodeError(path, `the data is damaged (${(error as Error).message})`);
  }
  const { width, height, data } = decoded;
  if (!(width > 0 && height > 0) || data.length !== width * height * 4) {
    throw new ImageDecodeError(path, `it decodes to ${width}×${height} pixels and ${data.length} bytes`);
  }
  return { width, height, data };
}
