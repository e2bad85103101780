/*
 * SIMD kernels of @decompose/engine, compiled to a tiny wasm module that imports the wasm backend's own
 * memory, so they read and write tfjs tensors in place. No stack, no data, no libc: every function only
 * loads and stores through the pointers it is given. Build: `node native/build.mjs` (needs clang and
 * wasm-ld, e.g. Debian's clang-14 and lld-14); the build embeds the module in src/kernels/simd-module.ts.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/* Low and high halves of a float32x4 as two float64x2. */
static inline v128_t low_f64(v128_t v) { return wasm_f64x2_promote_low_f32x4(v); }
static inline v128_t high_f64(v128_t v) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1)); }

static inline void accumulate(double* to, v128_t v) {
  wasm_v128_store(to, wasm_f64x2_add(wasm_v128_load(to), low_f64(v)));
  wasm_v128_store(to + 2, wasm_f64x2_add(wasm_v128_load(to + 2), high_f64(v)));
}

/*
 * Per channel of an n-element [..., C] float32 array x (C a multiple of 4), adds in float64 to acc[0..C) the
 * sum of w and to acc[C..2C) the sum of w*x, where w is the array `w`, or x itself when w is 0.
 */
EXPORT("channel_moments")
void channel_moments(const float* x, const float* w, int n, int channels, double* acc) {
  const float* weights = w ? w : x;
  for (int offset = 0; offset < n; offset += channels) {
    for (int c = 0; c < channels; c += 4) {
      v128_t wv = wasm_v128_load(weights + offset + c);
      accumulate(acc + c, wv);
      accumulate(acc + channels + c, wasm_f32x4_mul(wv, wasm_v128_load(x + offset + c)));
    }
  }
}

/*
 * out[i] = a[i]*p[c] + b[i]*q[c] + r[c] for the channel c of i (C a multiple of 4); without the b term when
 * b is 0. out may be a or b.
 */
EXPORT("channel_affine")
void channel_affine(float* out, const float* a, const float* p, const float* b, const float* q, const float* r,
                    int n, int channels) {
  if (b) {
    for (int offset = 0; offset < n; offset += channels) {
      for (int c = 0; c < channels; c += 4) {
        v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a + offset + c), wasm_v128_load(p + c)),
                                  wasm_v128_load(r + c));
        v = wasm_f32x4_add(v, wasm_f32x4_mul(wasm_v128_load(b + offset + c), wasm_v128_load(q + c)));
        wasm_v128_store(out + offset + c, v);
      }
    }
    return;
  }
  for (int offset = 0; offset < n; offset += channels) {
    for (int c = 0; c < channels; c += 4) {
      v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a + offset + c), wasm_v128_load(p + c)),
                                wasm_v128_load(r + c));
      wasm_v128_store(out + offset + c, v);
    }
  }
}

/*
 * Accumulates into dw the products of one row of output positions: for j < count,
 * dw[ci + u][co + 4v + lane] += x[j*x_step + ci + u] * dy[j*co_total + co + 4v + lane], for u < CI and v < CO_VECTORS.
 * The accumulators live in registers for the whole row.
 */
#define DEFINE_ROW(CI, CO_VECTORS)                                                                             \
  static inline void row_##CI##_##CO_VECTORS(const float* x, int x_step, const float* dy, int co_total,        \
                                             float* dw, int count) {                                        \
    v128_t acc[CI][CO_VECTORS];                                                                              \
    for (int u = 0; u < CI; u++)                                                                             \
      for (int v = 0; v < CO_VECTORS; v++) acc[u][v] = wasm_v128_load(dw + u * co_total + 4 * v);           \
    for (int j = 0; j < count; j++) {                                                                        \
      v128_t d[CO_VECTORS];                                                                                  \
      for (int v = 0; v < CO_VECTORS; v++) d[v] = wasm_v128_load(dy + j * co_total + 4 * v);                 \
      for (int u = 0; u < CI; u++) {                                                                         \
        v128_t s = wasm_v128_load32_splat(x + j * x_step + u);                                               \
        for (int v = 0; v < CO_VECTORS; v++) acc[u][v] = wasm_f32x4_add(acc[u][v], wasm_f32x4_mul(s, d[v])); \
      }                                                                                                      \
    }                                                                                                        \
    for (int u = 0; u < CI; u++)                                                                             \
      for (int v = 0; v < CO_VECTORS; v++) wasm_v128_store(dw + u * co_total + 4 * v, acc[u][v]);           \
  }

DEFINE_ROW(2, 4)
DEFINE_ROW(1, 4)
DEFINE_ROW(2, 1)
DEFINE_ROW(1, 1)

/*
 * Filter gradient of a 2-D convolution, NHWC: dw[a][b][ci][co] = sum over n, i, j of
 * x[n][i*sh + a - pad_top][j*sw + b - pad_left][ci] * dy[n][i][j][co] (zero outside x). dw (kh*kw*ci_total*co_total
 * floats) is overwritten. co_total must be a multiple of 4.
 */
EXPORT("conv2d_filter_grad")
void conv2d_filter_grad(const float* x, const float* dy, float* dw, int batch, int height, int width,
                        int ci_total, int out_height, int out_width, int co_total, int kh, int kw, int sh, int sw,
                        int pad_top, int pad_left) {
  int size = kh * kw * ci_total * co_total;
  for (int k = 0; k < size; k += 4) wasm_v128_store(dw + k, wasm_f32x4_splat(0.0f));
  int x_step = sw * ci_total;
  for (int n = 0; n < batch; n++) {
    for (int i = 0; i < out_height; i++) {
      const float* dy_row = dy + ((n * out_height + i) * out_width) * co_total;
      for (int a = 0; a < kh; a++) {
        int xi = i * sh + a - pad_top;
        if (xi < 0 || xi >= height) continue;
        for (int b = 0; b < kw; b++) {
          /* Output columns j whose input column j*sw + b - pad_left is inside x. */
          int first = 0;
          while (first < out_width && first * sw + b - pad_left < 0) first++;
          int end = out_width;
          while (end > first && (end - 1) * sw + b - pad_left >= width) end--;
          int count = end - first;
          if (count <= 0) continue;
          const float* x_row = x + ((n * height + xi) * width + first * sw + b - pad_left) * ci_total;
          const float* dy_start = dy_row + first * co_total;
          float* tap = dw + (a * kw + b) * ci_total * co_total;
          int ci = 0;
          for (; ci + 2 <= ci_total; ci += 2) {
            int co = 0;
            for (; co + 16 <= co_total; co += 16)
              row_2_4(x_row + ci, x_step, dy_start + co, co_total, tap + ci * co_total + co, count);
            for (; co < co_total; co += 4)
              row_2_1(x_row + ci, x_step, dy_start + co, co_total, tap + ci * co_total + co, count);
          }
          for (; ci < ci_total; ci++) {
            int co = 0;
            for (; co + 16 <= co_total; co += 16)
              row_1_4(x_row + ci, x_step, dy_start + co, co_total, tap + ci * co_total + co, count);
            for (; co < co_total; co += 4)
              row_1_1(x_row + ci, x_step, dy_start + co, co_total, tap + ci * co_total + co, count);
          }
        }
      }
    }
  }
}

/*
 * Input gradient of a 2-D convolution, NHWC: dx[n][i*sh + a - pad_top][j*sw + b - pad_left][ci] += sum over co of
 * dy[n][i][j][co] * w_t[a][b][co][ci] for every output position (i, j) and tap (a, b) that lands inside dx, where
 * w_t is the filter with its two channel axes swapped ([kh][kw][co][ci]). dx (batch*height*width*ci_total floats)
 * is overwritten. ci_total must be a multiple of 4. Each dx vector is read and written once per position and tap,
 * with all co products accumulated in registers in between.
 */
EXPORT("conv2d_input_grad")
void conv2d_input_grad(const float* dy, const float* w_t, float* dx, int batch, int height, int width, int ci_total,
                       int out_height, int out_width, int co_total, int kh, int kw, int sh, int sw, int pad_top,
                       int pad_left) {
  int size = batch * height * width * ci_total;
  for (int k = 0; k < size; k += 4) wasm_v128_store(dx + k, wasm_f32x4_splat(0.0f));
  for (int n = 0; n < batch; n++) {
    for (int i = 0; i < out_height; i++) {
      for (int a = 0; a < kh; a++) {
        int y = i * sh + a - pad_top;
        if (y < 0 || y >= height) continue;
        for (int j = 0; j < out_width; j++) {
          const float* g = dy + ((n * out_height + i) * out_width + j) * co_total;
          for (int b = 0; b < kw; b++) {
            int x = j * sw + b - pad_left;
            if (x < 0 || x >= width) continue;
            float* target = dx + ((n * height + y) * width + x) * ci_total;
            const float* w = w_t + (a * kw + b) * co_total * ci_total;
            int ci = 0;
            for (; ci + 16 <= ci_total; ci += 16) {
              v128_t s0 = wasm_v128_load(target + ci), s1 = wasm_v128_load(target + ci + 4);
              v128_t s2 = wasm_v128_load(target + ci + 8), s3 = wasm_v128_load(target + ci + 12);
              for (int co = 0; co < co_total; co++) {
                v128_t d = wasm_v128_load32_splat(g + co);
                const float* row = w + co * ci_total + ci;
                s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(d, wasm_v128_load(row)));
                s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(d, wasm_v128_load(row + 4)));
                s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(d, wasm_v128_load(row + 8)));
                s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(d, wasm_v128_load(row + 12)));
              }
              wasm_v128_store(target + ci, s0);
              wasm_v128_store(target + ci + 4, s1);
              wasm_v128_store(target + ci + 8, s2);
              wasm_v128_store(target + ci + 12, s3);
            }
            for (; ci < ci_total; ci += 4) {
              v128_t s0 = wasm_v128_load(target + ci);
              for (int co = 0; co < co_total; co++)
                s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load32_splat(g + co),
                                                       wasm_v128_load(w + co * ci_total + ci)));
              wasm_v128_store(target + ci, s0);
            }
          }
        }
      }
    }
  }
}
