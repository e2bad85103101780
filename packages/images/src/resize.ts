/**
 * Resizes an RGBA image to `outHeight × outWidth` RGB (the alpha channel dropped) by bilinear interpolation
 * with half-pixel centres (as `tf.image.resizeBilinear(…, halfPixelCenters = true)` and OpenCV's
 * `INTER_LINEAR`), writing into `out` at byte offset `at`. No anti-aliasing: shrinking an image by much more
 * than 2× skips pixels, as those do. An image already of the target size is copied exactly.
 */
export function resizeBilinearRgb(
  rgba: Uint8Array,
  width: number,
  height: number,
  outHeight: number,
  outWidth: number,
  out: Uint8Array,
  at: number,
): void {
  const scaleY = height / outHeight;
  const scaleX = width / outWidth;
  let o = at;
  for (let y = 0; y < outHeight; y++) {
    const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), height - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, height - 1);
    const fy = sy - y0;
    for (let x = 0; x < outWidth; x++) {
      const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), width - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, width - 1);
      const fx = sx - x0;
      const a = (y0 * width + x0) * 4;
      const b = (y0 * width + x1) * 4;
      const c = (y1 * width + x0) * 4;
      const d = (y1 * width + x1) * 4;
      for (let ch = 0; ch < 3; ch++) {
        const top = rgba[a + ch]! + (rgba[b + ch]! - rgba[a + ch]!) * fx;
        const bottom = rgba[c + ch]! + (rgba[d + ch]! - rgba[c + ch]!) * fx;
        out[o + ch] = Math.round(top + (bottom - top) * fy);
      }
      o += 3;
    }
  }
}
