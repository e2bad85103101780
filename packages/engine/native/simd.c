/*
 * SIMD kernels of @decompose/engine, compiled to a tiny wasm module that imports the wasm backend's own
 * memory, so they read and write tfjs tensors in place. No stack, no data, no libc: every function only
 * loads and stores through the pointers it is given. Build: `node native/build.mjs` (needs clang and
 * wasm-ld, e.g. Debian's clang-14 and lld-14); the build embeds the module in src/kernels/simd-module.ts.
 */
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(name)))

/*
 * a*b + c. The relaxed-SIMD build (-mrelaxed-simd) issues one fused multiply-add where the machine has one
 * (relaxed_madd may round once or twice: both are within the kernels' tolerance); the SIMD128 build, a multiply
 * and an add.
 */
static inline v128_t madd(v128_t a, v128_t b, v128_t c) {
#ifdef __wasm_relaxed_simd__
  return __builtin_wasm_relaxed_madd_f32x4(a, b, c);
#else
  return wasm_f32x4_add(wasm_f32x4_mul(a, b), c);
#endif
}

/* Applies the fused activation of the forward kernels: 0 linear, 1 relu. */
static inline v128_t activate(v128_t v, int activation) {
  return activation ? wasm_f32x4_max(v, wasm_f32x4_splat(0.0f)) : v;
}

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
 * b is 0, then max(0, ·) with `relu` (a BatchNorm's output with its relu fused). out may be a or b.
 */
EXPORT("channel_affine")
void channel_affine(float* out, const float* a, const float* p, const float* b, const float* q, const float* r,
                    int n, int channels, int relu) {
  if (b) {
    for (int offset = 0; offset < n; offset += channels) {
      for (int c = 0; c < channels; c += 4) {
        v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a + offset + c), wasm_v128_load(p + c)),
                                  wasm_v128_load(r + c));
        v = madd(wasm_v128_load(b + offset + c), wasm_v128_load(q + c), v);
        wasm_v128_store(out + offset + c, v);
      }
    }
    return;
  }
  for (int offset = 0; offset < n; offset += channels) {
    for (int c = 0; c < channels; c += 4) {
      v128_t v = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(a + offset + c), wasm_v128_load(p + c)),
                                wasm_v128_load(r + c));
      wasm_v128_store(out + offset + c, activate(v, relu));
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
        for (int v = 0; v < CO_VECTORS; v++) acc[u][v] = madd(s, d[v], acc[u][v]); \
      }                                                                                                      \
    }                                                                                                        \
    for (int u = 0; u < CI; u++)                                                                             \
      for (int v = 0; v < CO_VECTORS; v++) wasm_v128_store(dw + u * co_total + 4 * v, acc[u][v]);           \
  }

DEFINE_ROW(2, 4)
DEFINE_ROW(1, 4)
DEFINE_ROW(4, 2)
DEFINE_ROW(2, 1)
DEFINE_ROW(1, 1)

/*
 * The row of DEFINE_ROW for 4 output channels and 4·QUADS input channels, with the products as vectors of input
 * channels (whole loads of x, one broadcast of each dy value for all of them): dw[ci + 4q + lane][c] += ... .
 * The accumulators hold dw transposed (input channels in lanes) and are transposed back once per row.
 */
#define DEFINE_ROW_LANES(QUADS)                                                                               \
  static inline void row_lanes_##QUADS(const float* x, int x_step, const float* dy, float* dw, int count) {   \
    v128_t acc[QUADS][4];                                                                                    \
    for (int q = 0; q < QUADS; q++)                                                                          \
      for (int c = 0; c < 4; c++) acc[q][c] = wasm_f32x4_splat(0.0f);                                        \
    for (int j = 0; j < count; j++) {                                                                        \
      v128_t d = wasm_v128_load(dy + j * 4);                                                                 \
      v128_t s[4] = {wasm_i32x4_shuffle(d, d, 0, 0, 0, 0), wasm_i32x4_shuffle(d, d, 1, 1, 1, 1),            \
                     wasm_i32x4_shuffle(d, d, 2, 2, 2, 2), wasm_i32x4_shuffle(d, d, 3, 3, 3, 3)};            \
      for (int q = 0; q < QUADS; q++) {                                                                      \
        v128_t xv = wasm_v128_load(x + j * x_step + 4 * q);                                                  \
        for (int c = 0; c < 4; c++) acc[q][c] = madd(xv, s[c], acc[q][c]);         \
      }                                                                                                      \
    }                                                                                                        \
    for (int q = 0; q < QUADS; q++) {                                                                        \
      v128_t t0 = wasm_i32x4_shuffle(acc[q][0], acc[q][1], 0, 4, 1, 5);                                      \
      v128_t t1 = wasm_i32x4_shuffle(acc[q][2], acc[q][3], 0, 4, 1, 5);                                      \
      v128_t t2 = wasm_i32x4_shuffle(acc[q][0], acc[q][1], 2, 6, 3, 7);                                      \
      v128_t t3 = wasm_i32x4_shuffle(acc[q][2], acc[q][3], 2, 6, 3, 7);                                      \
      v128_t rows[4] = {wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5), wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7),      \
                        wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5), wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7)};     \
      for (int u = 0; u < 4; u++) {                                                                          \
        float* target = dw + (4 * q + u) * 4;                                                                \
        wasm_v128_store(target, wasm_f32x4_add(wasm_v128_load(target), rows[u]));                            \
      }                                                                                                      \
    }                                                                                                        \
  }

DEFINE_ROW_LANES(3)
DEFINE_ROW_LANES(2)

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
          /* Few output channels leave room in the registers for more input channels per row. */
          if (co_total == 4) {
            for (; ci + 12 <= ci_total; ci += 12) row_lanes_3(x_row + ci, x_step, dy_start, tap + ci * 4, count);
            for (; ci + 8 <= ci_total; ci += 8) row_lanes_2(x_row + ci, x_step, dy_start, tap + ci * 4, count);
          } else if (co_total == 8) {
            for (; ci + 4 <= ci_total; ci += 4)
              row_4_2(x_row + ci, x_step, dy_start, co_total, tap + ci * co_total, count);
          }
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
 * R output pixels of one row, CO_VECTORS·4 output channels: acc[r] = bias + sum over a < kh, t < taps_row of
 * xa[a*row + r*x_step + t] * w[(a*taps_row + t)*co_total], written to y + r*y_step. xa points at the first pixel's
 * tap (0, 0) in a source whose every tap is inside (x itself, or its zero-padded copy), rows `row` floats apart; t
 * runs over (b, ci), contiguous in NHWC.
 */
#define DEFINE_CONV_BLOCK(R, CO_VECTORS)                                                                     \
  static inline void conv_block_##R##_##CO_VECTORS(const float* xa, int row, int kh, int taps_row,          \
                                                     int x_step, const float* w, int co_total,               \
                                                     const float* bias, float* y, int y_step, int activation) { \
    v128_t acc[R][CO_VECTORS];                                                                               \
    for (int v = 0; v < CO_VECTORS; v++) {                                                                   \
      v128_t b = bias ? wasm_v128_load(bias + 4 * v) : wasm_f32x4_splat(0.0f);                               \
      for (int r = 0; r < R; r++) acc[r][v] = b;                                                             \
    }                                                                                                        \
    for (int a = 0; a < kh; a++, xa += row) {                                                                \
      for (int t = 0; t < taps_row; t++, w += co_total) {                                                    \
        v128_t wv[CO_VECTORS];                                                                               \
        for (int v = 0; v < CO_VECTORS; v++) wv[v] = wasm_v128_load(w + 4 * v);                              \
        for (int r = 0; r < R; r++) {                                                                        \
          v128_t s = wasm_v128_load32_splat(xa + r * x_step + t);                                            \
          for (int v = 0; v < CO_VECTORS; v++) acc[r][v] = madd(s, wv[v], acc[r][v]); \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
    for (int r = 0; r < R; r++)                                                                              \
      for (int v = 0; v < CO_VECTORS; v++)                                                                   \
        wasm_v128_store(y + r * y_step + 4 * v, activate(acc[r][v], activation));                            \
  }

/* Per vector count, the largest block whose accumulators, filter vectors and broadcast fit the 15 SIMD
 * registers V8 allocates on x64, and every smaller block for the ends of rows. */
DEFINE_CONV_BLOCK(8, 1)
DEFINE_CONV_BLOCK(7, 1)
DEFINE_CONV_BLOCK(6, 1)
DEFINE_CONV_BLOCK(5, 1)
DEFINE_CONV_BLOCK(4, 1)
DEFINE_CONV_BLOCK(3, 1)
DEFINE_CONV_BLOCK(2, 1)
DEFINE_CONV_BLOCK(1, 1)
DEFINE_CONV_BLOCK(5, 2)
DEFINE_CONV_BLOCK(4, 2)
DEFINE_CONV_BLOCK(3, 2)
DEFINE_CONV_BLOCK(2, 2)
DEFINE_CONV_BLOCK(1, 2)
DEFINE_CONV_BLOCK(3, 3)
DEFINE_CONV_BLOCK(2, 3)
DEFINE_CONV_BLOCK(1, 3)
DEFINE_CONV_BLOCK(2, 4)
DEFINE_CONV_BLOCK(1, 4)

/* One block of `count` pixels (≤ the largest block of its vector count) and 4·vectors output channels. */
static void conv_block(int vectors, int count, const float* xa, int row, int kh, int taps_row, int x_step,
                       const float* w, int co_total, const float* bias, float* y, int y_step, int activation) {
#define CONV_BLOCK_CASE(R, V) \
  case R: conv_block_##R##_##V(xa, row, kh, taps_row, x_step, w, co_total, bias, y, y_step, activation); return;
  switch (vectors) {
    case 1:
      switch (count) {
        CONV_BLOCK_CASE(8, 1) CONV_BLOCK_CASE(7, 1) CONV_BLOCK_CASE(6, 1) CONV_BLOCK_CASE(5, 1)
        CONV_BLOCK_CASE(4, 1) CONV_BLOCK_CASE(3, 1) CONV_BLOCK_CASE(2, 1) default: CONV_BLOCK_CASE(1, 1)
      }
    case 2:
      switch (count) {
        CONV_BLOCK_CASE(5, 2) CONV_BLOCK_CASE(4, 2) CONV_BLOCK_CASE(3, 2) CONV_BLOCK_CASE(2, 2)
        default: CONV_BLOCK_CASE(1, 2)
      }
    case 3:
      switch (count) { CONV_BLOCK_CASE(3, 3) CONV_BLOCK_CASE(2, 3) default: CONV_BLOCK_CASE(1, 3) }
    default:
      switch (count) { CONV_BLOCK_CASE(2, 4) default: CONV_BLOCK_CASE(1, 4) }
  }
#undef CONV_BLOCK_CASE
}

/*
 * `pixels` output pixels of one row (sources x_step floats apart, as for conv_block_*, outputs y_step apart), all
 * co_total outputs: groups of up to 16 output channels, each with the block size that fits its accumulators in
 * registers.
 */
static void conv_pixels(const float* xa, int pixels, int row, int kh, int taps_row, int x_step, const float* w,
                        int co_total, const float* bias, float* y, int y_step, int activation) {
  for (int g = 0; g < co_total; g += 16) {
    int vectors = (co_total - g < 16 ? co_total - g : 16) / 4;
    int block = vectors == 1 ? 8 : vectors == 2 ? 5 : vectors == 3 ? 3 : 2;
    for (int j = 0; j < pixels; j += block) {
      int count = pixels - j < block ? pixels - j : block;
      conv_block(vectors, count, xa + j * x_step, row, kh, taps_row, x_step, w + g, co_total, bias ? bias + g : 0,
                 y + j * y_step + g, y_step, activation);
    }
  }
}

/* [sum(a0), sum(a1), sum(a2), sum(a3)]: the lanes of four vectors added up, one vector per lane. */
static inline v128_t sum_lanes4(v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  v128_t s01 = wasm_f32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7));
  v128_t s23 = wasm_f32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5), wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 1, 4, 5), wasm_i32x4_shuffle(s01, s23, 2, 3, 6, 7));
}

/*
 * R output pixels, 4 output channels, input channels a multiple of 4 (source as for conv_block_*): the products
 * are vectors over 4 input channels (whole loads of x, no broadcasts), summed across lanes once at the end.
 * w_t holds, for each filter row a, the 4 channels' taps (b, ci) as 4 contiguous rows of taps_row floats.
 */
#define DEFINE_CONV_LANES(R)                                                                                 \
  static inline void conv_lanes_##R(const float* xa, int row, int kh, int taps_row, int x_step,              \
                                      const float* w_t, const float* bias, float* y, int co_total,            \
                                      int activation) {                                                       \
    v128_t acc[R][4];                                                                                        \
    for (int r = 0; r < R; r++)                                                                              \
      for (int c = 0; c < 4; c++) acc[r][c] = wasm_f32x4_splat(0.0f);                                        \
    for (int a = 0; a < kh; a++, xa += row) {                                                                \
      const float* wa = w_t + a * 4 * taps_row;                                                              \
      for (int t = 0; t < taps_row; t += 4) {                                                                \
        v128_t xv[R];                                                                                        \
        for (int r = 0; r < R; r++) xv[r] = wasm_v128_load(xa + r * x_step + t);                             \
        for (int c = 0; c < 4; c++) {                                                                        \
          v128_t wv = wasm_v128_load(wa + c * taps_row + t);                                                 \
          for (int r = 0; r < R; r++) acc[r][c] = madd(xv[r], wv, acc[r][c]);      \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
    v128_t b = bias ? wasm_v128_load(bias) : wasm_f32x4_splat(0.0f);                                         \
    for (int r = 0; r < R; r++)                                                                              \
      wasm_v128_store(y + r * co_total,                                                                      \
                      activate(wasm_f32x4_add(b, sum_lanes4(acc[r][0], acc[r][1], acc[r][2], acc[r][3])),    \
                               activation));                                                                 \
  }

DEFINE_CONV_LANES(2)
DEFINE_CONV_LANES(1)

/*
 * Copies image xn ([height, width, ci_total]) into a zero-padded buffer (rows `row` floats apart, the image at
 * (pad_top, pad_left)): its first `rows` rows and `columns` columns, the part the kernel reading it reaches. The
 * border stays as zeroed once before the first image.
 */
static inline void copy_into_padded(const float* xn, int width, int ci_total, float* padded, int row, int pad_top,
                                    int pad_left, int rows, int columns) {
  for (int i = 0; i < rows; i++) {
    const float* from = xn + i * width * ci_total;
    float* to = padded + (pad_top + i) * row + pad_left * ci_total;
    for (int k = 0; k < columns * ci_total; k++) to[k] = from[k];
  }
}

/* Where a kernel reads image xn from: xn itself when every tap is inside it, else its padded copy, made here. */
static inline const float* image_source(const float* xn, int inside, int width, int ci_total, float* padded, int row,
                                        int pad_top, int pad_left, int rows, int columns) {
  if (inside) return xn;
  copy_into_padded(xn, width, ci_total, padded, row, pad_top, pad_left, rows, columns);
  return padded;
}

/*
 * Forward convolution, NHWC, dilation 1, co_total a multiple of 4:
 * y[n][i][j][co] = act(bias[co] + sum over a, b, ci of x[n][i*sh + a - pad_top][j*sw + b - pad_left][ci] * w[a][b][ci][co])
 * (zero outside x; bias may be 0; activation 0 linear, 1 relu). Where some taps fall outside x, each image is
 * first copied into `padded` ([(out_height-1)*sh + kh, (out_width-1)*sw + kw, ci_total] floats, zero borders),
 * so every pixel runs the same register blocks, borders included. Each input value is broadcast against vectors
 * of up to 16 output channels, accumulated in registers for a block of pixels of one row. With w_t (the filter
 * regrouped for conv_lanes_*, C_in a multiple of 4) the products are vectors of input channels instead, which
 * suits few outputs from many inputs. At C_in ≤ 64 this beats tfjs-backend-wasm 4.22's XNNPACK convolution,
 * which runs 8-channel-wide tiles (half empty for 4 outputs) through an indirection buffer.
 */
EXPORT("conv2d_forward")
void conv2d_forward(const float* x, const float* w, const float* w_t, const float* bias, float* y, float* padded,
                   int batch, int height, int width, int ci_total, int out_height, int out_width, int co_total,
                   int kh, int kw, int sh, int sw, int pad_top, int pad_left, int activation) {
  int taps_row = kw * ci_total;
  int x_step = sw * ci_total;
  int padded_height = (out_height - 1) * sh + kh;
  int padded_width = (out_width - 1) * sw + kw;
  int inside = pad_top == 0 && pad_left == 0 && padded_height <= height && padded_width <= width;
  int row = (inside ? width : padded_width) * ci_total;
  /* The rows and columns of x the padded copy holds. */
  int rows = height + pad_top < padded_height ? height : padded_height - pad_top;
  int columns = width + pad_left < padded_width ? width : padded_width - pad_left;
  if (!inside) {
    int size = padded_height * row;
    for (int k = 0; k < size; k++) padded[k] = 0.0f;
  }
  for (int n = 0; n < batch; n++) {
    const float* source = image_source(x + n * height * width * ci_total, inside, width, ci_total, padded, row,
                                       pad_top, pad_left, rows, columns);
    for (int i = 0; i < out_height; i++) {
      float* y_row = y + ((n * out_height + i) * out_width) * co_total;
      const float* x_row = source + i * sh * row;
      if (w_t) {
        /* Input channels a multiple of 4: w_t is w regrouped by filter row, channel group and output channel. */
        int j = 0;
        for (; j + 2 <= out_width; j += 2)
          for (int g = 0; g < co_total; g += 4)
            conv_lanes_2(x_row + j * x_step, row, kh, taps_row, x_step, w_t + g * kh * taps_row,
                           bias ? bias + g : 0, y_row + j * co_total + g, co_total, activation);
        for (; j < out_width; j++)
          for (int g = 0; g < co_total; g += 4)
            conv_lanes_1(x_row + j * x_step, row, kh, taps_row, x_step, w_t + g * kh * taps_row,
                           bias ? bias + g : 0, y_row + j * co_total + g, co_total, activation);
        continue;
      }
      conv_pixels(x_row, out_width, row, kh, taps_row, x_step, w, co_total, bias, y_row, co_total, activation);
    }
  }
}

/*
 * Input gradient of a strided 2-D convolution (or a stride-1 one whose padding drops rows of dy: one phase), NHWC,
 * one output phase at a time: the dx positions at rows ≡ r (mod sh) and columns ≡ q (mod sw) only meet the filter
 * taps ≡ r + pad (mod s), so each phase is a stride-1
 * convolution of dy with those taps (flipped, channels swapped: [th][tw][co][ci]), which the forward's register
 * blocks write straight into every sh-th row and sw-th column of dx (a gather: each dx vector is stored once,
 * where scattering each dy pixel into its taps loaded and stored it once per tap). Per image, dy is copied into
 * `padded` ([padded_height][padded_width][co_total], zero borders, the image at (pad_top, pad_left)) unless it
 * needs no border. `phases` holds 9 ints per phase: taps high and wide, the padded row and column its first output
 * reads, its output rows and columns, its first dx row and column, and the heap address of its taps. dx positions
 * of no phase are left as they are (the caller zeroes them). ci_total a multiple of 4.
 */
EXPORT("conv2d_input_grad_phases")
void conv2d_input_grad_phases(const float* dy, const int* phases, int phase_count, float* dx, float* padded,
                              int batch, int dy_height, int dy_width, int co_total, int height, int width,
                              int ci_total, int sh, int sw, int pad_top, int pad_left, int padded_height,
                              int padded_width) {
  int inside = padded_height == dy_height && padded_width == dy_width;
  int row = padded_width * co_total;
  if (!inside)
    for (int k = 0; k < padded_height * row; k++) padded[k] = 0.0f;
  for (int n = 0; n < batch; n++) {
    const float* source = image_source(dy + n * dy_height * dy_width * co_total, inside, dy_width, co_total, padded,
                                       row, pad_top, pad_left, dy_height, dy_width);
    for (int p = 0; p < phase_count; p++) {
      const int* phase = phases + 9 * p;
      int th = phase[0], tw = phase[1], first_row = phase[2], first_column = phase[3];
      int rows = phase[4], columns = phase[5], dx_row = phase[6], dx_column = phase[7];
      const float* w = (const float*)phase[8];
      for (int i = 0; i < rows; i++) {
        const float* x_row = source + (first_row + i) * row + first_column * co_total;
        float* target = dx + ((n * height + dx_row + i * sh) * width + dx_column) * ci_total;
        conv_pixels(x_row, columns, row, th, tw * co_total, co_total, w, ci_total, 0, target, sw * ci_total, 0);
      }
    }
  }
}

/*
 * Winograd's F(2×2, 3×3) forward convolution (Lavin & Gray, 2015): 3×3 filters, stride 1, dilation 1, NHWC,
 * ci_total and co_total multiples of 4; y as conv2d_forward writes it (bias may be 0; activation 0 linear, 1
 * relu). Each 2×2 block of outputs is A^T [(G g G^T) ⊙ (B^T d B)] A over its 4×4 input patch d: 16 multiplies
 * per input and output channel where the direct form does 36, so 2.25× fewer, the rest additions over one
 * channel at a time. Per chunk of `chunk_tiles` tiles of one image (in row order), the patches' transforms V
 * ([16][tiles][ci]) go through 16 matrix products with the transformed filters U ([16][ci][co], written here from
 * w [3][3][ci][co]) into M ([16][tiles][co]), whose output transforms write y. `padded` holds each image with
 * zero borders ([2·tiles_high + 2][2·tiles_wide + 2][ci]); v and m hold one chunk each.
 */
/*
 * The tile grid both Winograd kernels share, declared where it is used: tiles_high × tiles_wide tiles of 2×2
 * outputs; the zero-padded image copy they read 4×4 input tiles from, rows `row` floats apart (zeroed here), and
 * the `rows` × `columns` of an image the tiles reach.
 */
#define WINOGRAD_PADDED_GRID                                                                   \
  int tiles_high = (out_height + 1) / 2, tiles_wide = (out_width + 1) / 2;                     \
  int padded_height = 2 * tiles_high + 2, padded_width = 2 * tiles_wide + 2;                   \
  int row = padded_width * ci_total;                                                           \
  int rows = height + pad_top < padded_height ? height : padded_height - pad_top;              \
  int columns = width + pad_left < padded_width ? width : padded_width - pad_left;             \
  for (int k = 0; k < padded_height * row; k++) padded[k] = 0.0f;

/*
 * V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], four input channels at a time, for the `tiles` tiles
 * from `first` (row-major, tiles_wide a row): position e of tile t at v[e * tiles * ci_total + t * ci_total + c].
 */
static inline void winograd_input_tiles(const float* padded, int row, int ci_total, int tiles_wide, int first,
                                        int tiles, float* v) {
  int v_plane = tiles * ci_total;
  for (int tile = 0; tile < tiles; tile++) {
    int ti = (first + tile) / tiles_wide, tj = (first + tile) % tiles_wide;
    const float* d0 = padded + 2 * ti * row + 2 * tj * ci_total;
    for (int c = 0; c < ci_total; c += 4) {
      v128_t s[4][4];
      for (int b = 0; b < 4; b++) {
        const float* col = d0 + b * ci_total + c;
        v128_t p0 = wasm_v128_load(col), p1 = wasm_v128_load(col + row);
        v128_t p2 = wasm_v128_load(col + 2 * row), p3 = wasm_v128_load(col + 3 * row);
        s[0][b] = wasm_f32x4_sub(p0, p2);
        s[1][b] = wasm_f32x4_add(p1, p2);
        s[2][b] = wasm_f32x4_sub(p2, p1);
        s[3][b] = wasm_f32x4_sub(p1, p3);
      }
      float* vt = v + tile * ci_total + c;
      for (int i = 0; i < 4; i++) {
        wasm_v128_store(vt + (i * 4 + 0) * v_plane, wasm_f32x4_sub(s[i][0], s[i][2]));
        wasm_v128_store(vt + (i * 4 + 1) * v_plane, wasm_f32x4_add(s[i][1], s[i][2]));
        wasm_v128_store(vt + (i * 4 + 2) * v_plane, wasm_f32x4_sub(s[i][2], s[i][1]));
        wasm_v128_store(vt + (i * 4 + 3) * v_plane, wasm_f32x4_sub(s[i][1], s[i][3]));
      }
    }
  }
}

/*
 * M = V·U at each of the 16 positions of a chunk's tiles: a 1×1 "convolution" of `tiles` pixels with ci_total
 * inputs. Whole groups of 16 outputs call the 2-pixel, 4-vector block directly: the products are only ci_total
 * deep, and conv_pixels' choice of block per call cost 15 % of them at 16 channels.
 */
static inline void winograd_products(const float* v, int v_plane, int tiles, int ci_total, const float* u, int pairs,
                              int co_total, float* m, int m_plane) {
  for (int e = 0; e < 16; e++) {
    const float* ve = v + e * v_plane;
    const float* ue = u + e * pairs;
    float* me = m + e * m_plane;
    if (co_total % 16 != 0) {
      conv_pixels(ve, tiles, 0, 1, ci_total, ci_total, ue, co_total, 0, me, co_total, 0);
      continue;
    }
    for (int g = 0; g < co_total; g += 16) {
      int j = 0;
      for (; j + 2 <= tiles; j += 2)
        conv_block_2_4(ve + j * ci_total, 0, 1, ci_total, ci_total, ue + g, co_total, 0, me + j * co_total + g, co_total, 0);
      if (j < tiles)
        conv_block_1_4(ve + j * ci_total, 0, 1, ci_total, ci_total, ue + g, co_total, 0, me + j * co_total + g, co_total, 0);
    }
  }
}

/*
 * One output row of a Winograd tile, (q0 + q1 + q2, q1 - q2 - q3) plus bias: the right pixel only where the tile
 * has two columns. A function, not a loop over the tile's rows, so q is never indexed by a run-time value: that
 * would put it on a stack, which this module must not have.
 */
static inline void winograd_output_row(float* y, int co_total, const v128_t q[4], v128_t bias, int two_columns,
                                       int activation) {
  v128_t left = wasm_f32x4_add(wasm_f32x4_add(q[0], q[1]), q[2]);
  wasm_v128_store(y, activate(wasm_f32x4_add(left, bias), activation));
  if (two_columns) {
    v128_t right = wasm_f32x4_sub(wasm_f32x4_sub(q[1], q[2]), q[3]);
    wasm_v128_store(y + co_total, activate(wasm_f32x4_add(right, bias), activation));
  }
}

EXPORT("conv2d_winograd")
void conv2d_winograd(const float* x, const float* w, const float* bias, float* y, float* u, float* padded,
                     float* v, float* m, int batch, int height, int width, int ci_total, int out_height,
                     int out_width, int co_total, int pad_top, int pad_left, int chunk_tiles, int activation) {
  const v128_t half = wasm_f32x4_splat(0.5f);
  int pairs = ci_total * co_total;
  /* U = G g G^T, G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1], four output channels at a time. */
  for (int k = 0; k < pairs; k += 4) {
    v128_t g[3][3], t[4][3];
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) g[a][b] = wasm_v128_load(w + (a * 3 + b) * pairs + k);
    for (int b = 0; b < 3; b++) {
      t[0][b] = g[0][b];
      t[1][b] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(g[0][b], g[1][b]), g[2][b]));
      t[2][b] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(g[0][b], g[1][b]), g[2][b]));
      t[3][b] = g[2][b];
    }
    for (int i = 0; i < 4; i++) {
      v128_t r[4];
      r[0] = t[i][0];
      r[1] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_add(t[i][0], t[i][1]), t[i][2]));
      r[2] = wasm_f32x4_mul(half, wasm_f32x4_add(wasm_f32x4_sub(t[i][0], t[i][1]), t[i][2]));
      r[3] = t[i][2];
      for (int j = 0; j < 4; j++) wasm_v128_store(u + (i * 4 + j) * pairs + k, r[j]);
    }
  }
  WINOGRAD_PADDED_GRID
  for (int n = 0; n < batch; n++) {
    copy_into_padded(x + n * height * width * ci_total, width, ci_total, padded, row, pad_top, pad_left, rows,
                        columns);
    int image_tiles = tiles_high * tiles_wide;
    for (int first = 0; first < image_tiles; first += chunk_tiles) {
      int last = first + chunk_tiles < image_tiles ? first + chunk_tiles : image_tiles;
      int tiles = last - first;
      int v_plane = tiles * ci_total, m_plane = tiles * co_total;
      winograd_input_tiles(padded, row, ci_total, tiles_wide, first, tiles, v);
      winograd_products(v, v_plane, tiles, ci_total, u, pairs, co_total, m, m_plane);
      /* Y = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1], four output channels at a time; odd edges write one row/column. */
      for (int tile = 0; tile < tiles; tile++) {
        int oi = 2 * ((first + tile) / tiles_wide), oj = 2 * ((first + tile) % tiles_wide);
        int two_rows = oi + 1 < out_height, two_columns = oj + 1 < out_width;
        float* y0 = y + ((n * out_height + oi) * out_width + oj) * co_total;
        for (int c = 0; c < co_total; c += 4) {
          const float* mt = m + tile * co_total + c;
          v128_t q[2][4];
          for (int b = 0; b < 4; b++) {
            v128_t m0 = wasm_v128_load(mt + (0 * 4 + b) * m_plane), m1 = wasm_v128_load(mt + (1 * 4 + b) * m_plane);
            v128_t m2 = wasm_v128_load(mt + (2 * 4 + b) * m_plane), m3 = wasm_v128_load(mt + (3 * 4 + b) * m_plane);
            q[0][b] = wasm_f32x4_add(wasm_f32x4_add(m0, m1), m2);
            q[1][b] = wasm_f32x4_sub(wasm_f32x4_sub(m1, m2), m3);
          }
          v128_t bv = bias ? wasm_v128_load(bias + c) : wasm_f32x4_splat(0.0f);
          float* yc = y0 + c;
          winograd_output_row(yc, co_total, q[0], bv, two_columns, activation);
          if (two_rows) winograd_output_row(yc + out_width * co_total, co_total, q[1], bv, two_columns, activation);
        }
      }
    }
  }
}

/*
 * dw-block of the Winograd filter gradient: m[c][k] (rows c and c + 1, 16 outputs k from k0) += sum over the
 * chunk's tiles t of v[t][c] · d[t][k], v rows ci_total floats apart and d rows co_total apart.
 */
static inline void dw_block_2_4(const float* v, int ci_total, const float* d, int co_total, int tiles, float* m) {
  v128_t acc[2][4];
  for (int r = 0; r < 2; r++)
    for (int q = 0; q < 4; q++) acc[r][q] = wasm_v128_load(m + r * co_total + 4 * q);
  for (int t = 0; t < tiles; t++, v += ci_total, d += co_total) {
    v128_t s0 = wasm_v128_load32_splat(v), s1 = wasm_v128_load32_splat(v + 1);
    for (int q = 0; q < 4; q++) {
      v128_t dv = wasm_v128_load(d + 4 * q);
      acc[0][q] = madd(s0, dv, acc[0][q]);
      acc[1][q] = madd(s1, dv, acc[1][q]);
    }
  }
  for (int r = 0; r < 2; r++)
    for (int q = 0; q < 4; q++) wasm_v128_store(m + r * co_total + 4 * q, acc[r][q]);
}

/* Row i of D = A g A^T from row i of A g, (a, b): D[i] = [a, a + b, a - b, -b], one plane per position. */
static inline void winograd_dy_row(float* dt, int d_plane, int i, v128_t a, v128_t b) {
  wasm_v128_store(dt + (i * 4 + 0) * d_plane, a);
  wasm_v128_store(dt + (i * 4 + 1) * d_plane, wasm_f32x4_add(a, b));
  wasm_v128_store(dt + (i * 4 + 2) * d_plane, wasm_f32x4_sub(a, b));
  wasm_v128_store(dt + (i * 4 + 3) * d_plane, wasm_f32x4_neg(b));
}

/*
 * Filter gradient of a 3×3, stride-1 convolution by Winograd's F(3×3, 2×2), NHWC, the transpose of the forward's
 * F(2×2, 3×3): per 2×2 tile of dy, dw += G^T [(A dy A^T) ⊙ (B^T d B)] G over the 4×4 input patch d, with the
 * forward's B^T and G and A = [1 0; 1 1; 1 -1; 0 -1]. The 16 products, summed over every tile of every image
 * into m (16 · ci_total · co_total floats), are dw's only multiplies: 2.25× fewer than the direct kernel's. dy
 * rows and columns past the output (odd sizes) count as zeros. ci_total a multiple of 4, co_total of 16; dw
 * (9 · ci_total · co_total floats) is overwritten. Scratch as for conv2d_winograd: padded, then v and d for
 * chunk_tiles tiles.
 */
EXPORT("conv2d_filter_grad_winograd")
void conv2d_filter_grad_winograd(const float* x, const float* dy, float* dw, float* m, float* padded, float* v,
                                 float* d, int batch, int height, int width, int ci_total, int out_height,
                                 int out_width, int co_total, int pad_top, int pad_left, int chunk_tiles) {
  const v128_t half = wasm_f32x4_splat(0.5f);
  int pairs = ci_total * co_total;
  for (int k = 0; k < 16 * pairs; k++) m[k] = 0.0f;
  WINOGRAD_PADDED_GRID
  const v128_t zero = wasm_f32x4_splat(0.0f);
  for (int n = 0; n < batch; n++) {
    copy_into_padded(x + n * height * width * ci_total, width, ci_total, padded, row, pad_top, pad_left, rows,
                        columns);
    const float* dyn = dy + n * out_height * out_width * co_total;
    int image_tiles = tiles_high * tiles_wide;
    for (int first = 0; first < image_tiles; first += chunk_tiles) {
      int tiles = first + chunk_tiles < image_tiles ? chunk_tiles : image_tiles - first;
      int v_plane = tiles * ci_total, d_plane = tiles * co_total;
      winograd_input_tiles(padded, row, ci_total, tiles_wide, first, tiles, v);
      /* D = A g A^T of each 2×2 dy tile g, four output channels at a time. */
      for (int tile = 0; tile < tiles; tile++) {
        int oi = 2 * ((first + tile) / tiles_wide), oj = 2 * ((first + tile) % tiles_wide);
        int two_rows = oi + 1 < out_height, two_columns = oj + 1 < out_width;
        const float* g0 = dyn + (oi * out_width + oj) * co_total;
        const float* g1 = g0 + out_width * co_total;
        for (int c = 0; c < co_total; c += 4) {
          v128_t p00 = wasm_v128_load(g0 + c);
          v128_t p01 = two_columns ? wasm_v128_load(g0 + co_total + c) : zero;
          v128_t p10 = two_rows ? wasm_v128_load(g1 + c) : zero;
          v128_t p11 = two_rows && two_columns ? wasm_v128_load(g1 + co_total + c) : zero;
          /* Rows of A g: [g0, g0 + g1, g0 - g1, -g1], each of two columns; then the same along each row. */
          float* dt = d + tile * co_total + c;
          winograd_dy_row(dt, d_plane, 0, p00, p01);
          winograd_dy_row(dt, d_plane, 1, wasm_f32x4_add(p00, p10), wasm_f32x4_add(p01, p11));
          winograd_dy_row(dt, d_plane, 2, wasm_f32x4_sub(p00, p10), wasm_f32x4_sub(p01, p11));
          winograd_dy_row(dt, d_plane, 3, wasm_f32x4_neg(p10), wasm_f32x4_neg(p11));
        }
      }
      /* m_e += V_e^T · D_e: two input channels by 16 outputs per block, over the chunk's tiles. */
      for (int e = 0; e < 16; e++) {
        const float* ve = v + e * v_plane;
        const float* de = d + e * d_plane;
        float* me = m + e * pairs;
        for (int c = 0; c < ci_total; c += 2)
          for (int k = 0; k < co_total; k += 16)
            dw_block_2_4(ve + c, ci_total, de + k, co_total, tiles, me + c * co_total + k);
      }
    }
  }
  /* dw = G^T M G, G^T = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1], four output channels at a time. */
  for (int k = 0; k < pairs; k += 4) {
    v128_t t[3][4];
    for (int j = 0; j < 4; j++) {
      v128_t m0 = wasm_v128_load(m + (0 * 4 + j) * pairs + k), m1 = wasm_v128_load(m + (1 * 4 + j) * pairs + k);
      v128_t m2 = wasm_v128_load(m + (2 * 4 + j) * pairs + k), m3 = wasm_v128_load(m + (3 * 4 + j) * pairs + k);
      v128_t sum = wasm_f32x4_mul(half, wasm_f32x4_add(m1, m2));
      t[0][j] = wasm_f32x4_add(m0, sum);
      t[1][j] = wasm_f32x4_mul(half, wasm_f32x4_sub(m1, m2));
      t[2][j] = wasm_f32x4_add(sum, m3);
    }
    for (int a = 0; a < 3; a++) {
      v128_t sum = wasm_f32x4_mul(half, wasm_f32x4_add(t[a][1], t[a][2]));
      wasm_v128_store(dw + (a * 3 + 0) * pairs + k, wasm_f32x4_add(t[a][0], sum));
      wasm_v128_store(dw + (a * 3 + 1) * pairs + k, wasm_f32x4_mul(half, wasm_f32x4_sub(t[a][1], t[a][2])));
      wasm_v128_store(dw + (a * 3 + 2) * pairs + k, wasm_f32x4_add(sum, t[a][3]));
    }
  }
}

/*
 * out[r][c] = act(bias[c] + sum over k < depth of a[r][k] * b[k][c]) for r < rows, c < columns (a multiple of 4):
 * a matrix product whose right factor is small enough to stay in cache (the 1×1 combination step of a basis
 * convolution, and its input gradient), as a 1×1 convolution of the rows on the convolution's register blocks.
 * Columns go in groups of 16, then one of 8 and one of 4, each with as many rows at a time as its registers hold
 * (2, 4, 6; conv_pixels' 5 and 8 rows ran 10-40 % slower here): a group of 8 taken two rows at a time
 * re-broadcast each a value for both halves (0.29 ms at [8192, 32]·[32, 8], twice the time of the same
 * multiply-adds as [8192, 8]·[8, 32]). Chunks of 12 rows (whole blocks of every group) keep their part of a in
 * cache for all groups.
 */
EXPORT("matmul_small_right")
void matmul_small_right(const float* a, const float* b, const float* bias, float* out, int rows, int depth,
                        int columns, int activation) {
#define MATMUL_ROWS(R, V) \
  conv_block_##R##_##V(ac + r * depth, 0, 1, depth, depth, bc, columns, biasc, oc + r * columns + c, columns, activation)
  for (int first = 0; first < rows; first += 12) {
    int count = rows - first < 12 ? rows - first : 12;
    const float* ac = a + first * depth;
    float* oc = out + first * columns;
    for (int c = 0; c < columns;) {
      const float* bc = b + c;
      const float* biasc = bias ? bias + c : 0;
      int r = 0;
      if (columns - c >= 16) {
        for (; r + 2 <= count; r += 2) MATMUL_ROWS(2, 4);
        for (; r < count; r++) MATMUL_ROWS(1, 4);
        c += 16;
      } else if (columns - c >= 8) {
        for (; r + 4 <= count; r += 4) MATMUL_ROWS(4, 2);
        for (; r < count; r++) MATMUL_ROWS(1, 2);
        c += 8;
      } else {
        for (; r + 6 <= count; r += 6) MATMUL_ROWS(6, 1);
        for (; r < count; r++) MATMUL_ROWS(1, 1);
        c += 4;
      }
    }
  }
#undef MATMUL_ROWS
}

/*
 * Copies `rows` rows of `from` floats at source into rows of `to` floats at target: the first min(from, to)
 * floats of each row, then zeros. Pads channel counts to a multiple of 4 for the kernels above (filters, dy)
 * and takes the padding off again (outputs).
 */
EXPORT("copy_rows")
void copy_rows(const float* source, int from, float* target, int to, int rows) {
  int n = from < to ? from : to;
  for (int r = 0; r < rows; r++) {
    const float* s = source + r * from;
    float* t = target + r * to;
    int c = 0;
    for (; c < n; c++) t[c] = s[c];
    for (; c < to; c++) t[c] = 0.0f;
  }
}

/*
 * The taps of one output axis of a depthwise convolution's input gradient: for input position p, the taps t < k
 * whose output position (p + pad - t*dilation) / stride is whole and inside [0, out); writes the pairs (t, output
 * position) to list and returns their count.
 */
static int depthwise_taps(int p, int pad, int k, int dilation, int stride, int out, int* list) {
  int count = 0;
  for (int t = 0; t < k; t++) {
    int q = p + pad - t * dilation;
    if (q < 0 || q % stride != 0 || q / stride >= out) continue;
    list[2 * count] = t;
    list[2 * count + 1] = q / stride;
    count++;
  }
  return count;
}

/*
 * Input gradient of a depthwise convolution, NHWC, channel multiplier M: dx[n][i][j][c] = sum over the taps (a, b)
 * and m < M of dy[n][(i + pad_top - a*dh)/sh][(j + pad_left - b*dw)/sw][c*M + m] * w[a][b][c*M + m], over the
 * taps whose output position is whole and inside dy (a gather: each dx vector is written once). The C*M products
 * of a tap are contiguous in dy and in w (the filter [kh][kw][C][M] read as [kh][kw][C*M]) and accumulate in
 * registers over the taps; for M > 1 they go to `scratch` (C*M floats) and each group of M is summed into dx.
 * `taps` holds 2*(kh + kw) ints.
 */
EXPORT("depthwise_input_grad")
void depthwise_input_grad(const float* dy, const float* w, float* dx, float* scratch, int* taps, int batch,
                          int height, int width, int channels, int out_height, int out_width, int multiplier,
                          int kh, int kw, int sh, int sw, int pad_top, int pad_left, int dh, int dw) {
  int wide = channels * multiplier;
  int* rows = taps;
  int* cols = taps + 2 * kh;
  for (int n = 0; n < batch; n++) {
    for (int i = 0; i < height; i++) {
      int row_count = depthwise_taps(i, pad_top, kh, dh, sh, out_height, rows);
      for (int j = 0; j < width; j++) {
        int col_count = depthwise_taps(j, pad_left, kw, dw, sw, out_width, cols);
        float* pixel = dx + ((n * height + i) * width + j) * channels;
        float* target = multiplier == 1 ? pixel : scratch;
        const float* dy_image = dy + n * out_height * out_width * wide;
        int k = 0;
        for (; k + 16 <= wide; k += 16) {
          v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
          for (int r = 0; r < row_count; r++) {
            const float* dy_row = dy_image + rows[2 * r + 1] * out_width * wide + k;
            const float* w_row = w + rows[2 * r] * kw * wide + k;
            for (int q = 0; q < col_count; q++) {
              const float* g = dy_row + cols[2 * q + 1] * wide;
              const float* f = w_row + cols[2 * q] * wide;
              s0 = madd(wasm_v128_load(g), wasm_v128_load(f), s0);
              s1 = madd(wasm_v128_load(g + 4), wasm_v128_load(f + 4), s1);
              s2 = madd(wasm_v128_load(g + 8), wasm_v128_load(f + 8), s2);
              s3 = madd(wasm_v128_load(g + 12), wasm_v128_load(f + 12), s3);
            }
          }
          wasm_v128_store(target + k, s0);
          wasm_v128_store(target + k + 4, s1);
          wasm_v128_store(target + k + 8, s2);
          wasm_v128_store(target + k + 12, s3);
        }
        for (; k + 4 <= wide; k += 4) {
          v128_t s0 = wasm_f32x4_splat(0.0f);
          for (int r = 0; r < row_count; r++) {
            const float* dy_row = dy_image + rows[2 * r + 1] * out_width * wide + k;
            const float* w_row = w + rows[2 * r] * kw * wide + k;
            for (int q = 0; q < col_count; q++)
              s0 = madd(wasm_v128_load(dy_row + cols[2 * q + 1] * wide), wasm_v128_load(w_row + cols[2 * q] * wide), s0);
          }
          wasm_v128_store(target + k, s0);
        }
        for (; k < wide; k++) {
          float s = 0.0f;
          for (int r = 0; r < row_count; r++) {
            const float* dy_row = dy_image + rows[2 * r + 1] * out_width * wide + k;
            const float* w_row = w + rows[2 * r] * kw * wide + k;
            for (int q = 0; q < col_count; q++) s += dy_row[cols[2 * q + 1] * wide] * w_row[cols[2 * q] * wide];
          }
          target[k] = s;
        }
        if (multiplier > 1) {
          for (int c = 0; c < channels; c++) {
            float s = 0.0f;
            for (int m = 0; m < multiplier; m++) s += scratch[c * multiplier + m];
            pixel[c] = s;
          }
        }
      }
    }
  }
}

/*
 * Filter gradient of a depthwise convolution, NHWC, channel multiplier M: dw[a][b][c*M + m] = sum over n, i, j of
 * x[n][i*sh - pad_top + a*dh][j*sw - pad_left + b*dw][c] * dy[n][i][j][c*M + m] (zero outside x). Each output row
 * sums in float32 registers (vectors of channels for M = 1), and the row sums in float64 in `acc` (kh*kw*C*M
 * doubles), which is rounded into dw at the end. dw is overwritten.
 */
EXPORT("depthwise_filter_grad")
void depthwise_filter_grad(const float* x, const float* dy, float* dwt, double* acc, int batch, int height,
                           int width, int channels, int out_height, int out_width, int multiplier, int kh, int kw,
                           int sh, int sw, int pad_top, int pad_left, int dh, int dw) {
  int wide = channels * multiplier;
  int size = kh * kw * wide;
  for (int k = 0; k < size; k++) acc[k] = 0.0;
  int x_step = sw * channels;
  for (int n = 0; n < batch; n++) {
    for (int i = 0; i < out_height; i++) {
      const float* dy_row = dy + ((n * out_height + i) * out_width) * wide;
      for (int a = 0; a < kh; a++) {
        int xi = i * sh - pad_top + a * dh;
        if (xi < 0 || xi >= height) continue;
        for (int b = 0; b < kw; b++) {
          int offset = b * dw - pad_left;
          int first = 0;
          while (first < out_width && first * sw + offset < 0) first++;
          int end = out_width;
          while (end > first && (end - 1) * sw + offset >= width) end--;
          int count = end - first;
          if (count <= 0) continue;
          const float* x_row = x + ((n * height + xi) * width + first * sw + offset) * channels;
          const float* g = dy_row + first * wide;
          double* tap = acc + (a * kw + b) * wide;
          if (multiplier > 1) {
            for (int k = 0; k < wide; k++) {
              int c = k / multiplier;
              float s = 0.0f;
              for (int j = 0; j < count; j++) s += x_row[j * x_step + c] * g[j * wide + k];
              tap[k] += s;
            }
            continue;
          }
          int k = 0;
          for (; k + 16 <= wide; k += 16) {
            v128_t s0 = wasm_f32x4_splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
            for (int j = 0; j < count; j++) {
              const float* xv = x_row + j * x_step + k;
              const float* d = g + j * wide + k;
              s0 = madd(wasm_v128_load(xv), wasm_v128_load(d), s0);
              s1 = madd(wasm_v128_load(xv + 4), wasm_v128_load(d + 4), s1);
              s2 = madd(wasm_v128_load(xv + 8), wasm_v128_load(d + 8), s2);
              s3 = madd(wasm_v128_load(xv + 12), wasm_v128_load(d + 12), s3);
            }
            accumulate(tap + k, s0);
            accumulate(tap + k + 4, s1);
            accumulate(tap + k + 8, s2);
            accumulate(tap + k + 12, s3);
          }
          for (; k + 4 <= wide; k += 4) {
            v128_t s0 = wasm_f32x4_splat(0.0f);
            for (int j = 0; j < count; j++)
              s0 = madd(wasm_v128_load(x_row + j * x_step + k), wasm_v128_load(g + j * wide + k), s0);
            accumulate(tap + k, s0);
          }
          for (; k < wide; k++) {
            float s = 0.0f;
            for (int j = 0; j < count; j++) s += x_row[j * x_step + k] * g[j * wide + k];
            tap[k] += s;
          }
        }
      }
    }
  }
  for (int k = 0; k < size; k++) dwt[k] = (float)acc[k];
}

/*
 * out[i] = dy[i] where low <= x[i] <= high (low < x[i] when low_open), else 0: the gradient of a clip or relu6
 * (of relu with high = infinity). out may be dy.
 */
EXPORT("masked_grad")
void masked_grad(const float* dy, const float* x, float* out, int n, float low, float high, int low_open) {
  v128_t lo = wasm_f32x4_splat(low), hi = wasm_f32x4_splat(high);
  int i = 0;
  if (low_open) {
    for (; i + 4 <= n; i += 4) {
      v128_t v = wasm_v128_load(x + i);
      v128_t mask = wasm_v128_and(wasm_f32x4_gt(v, lo), wasm_f32x4_le(v, hi));
      wasm_v128_store(out + i, wasm_v128_and(wasm_v128_load(dy + i), mask));
    }
    for (; i < n; i++) out[i] = x[i] > low && x[i] <= high ? dy[i] : 0.0f;
    return;
  }
  for (; i + 4 <= n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    v128_t mask = wasm_v128_and(wasm_f32x4_ge(v, lo), wasm_f32x4_le(v, hi));
    wasm_v128_store(out + i, wasm_v128_and(wasm_v128_load(dy + i), mask));
  }
  for (; i < n; i++) out[i] = x[i] >= low && x[i] <= high ? dy[i] : 0.0f;
}

/*
 * Input gradient of an average pool, NHWC: dx[n][p][q][c] = scale · (sum of dy[n][i][j][c] over the windows
 * (i, j) that cover (p, q)), scale = 1 / (kh·kw) as tfjs's cpu backend divides (padding counted). Scatters each
 * dy pixel into its window, vectors of channels at a time; dx is overwritten.
 */
EXPORT("avg_pool_grad")
void avg_pool_grad(const float* dy, float* dx, int batch, int height, int width, int channels, int out_height,
                   int out_width, int kh, int kw, int sh, int sw, int pad_top, int pad_left, float scale) {
  int size = batch * height * width * channels;
  for (int k = 0; k < size; k++) dx[k] = 0.0f;
  v128_t s = wasm_f32x4_splat(scale);
  for (int n = 0; n < batch; n++) {
    for (int i = 0; i < out_height; i++) {
      int top = i * sh - pad_top;
      int row_start = top < 0 ? 0 : top, row_end = top + kh < height ? top + kh : height;
      for (int j = 0; j < out_width; j++) {
        int left = j * sw - pad_left;
        int col_start = left < 0 ? 0 : left, col_end = left + kw < width ? left + kw : width;
        const float* g = dy + ((n * out_height + i) * out_width + j) * channels;
        for (int p = row_start; p < row_end; p++) {
          for (int q = col_start; q < col_end; q++) {
            float* target = dx + ((n * height + p) * width + q) * channels;
            int c = 0;
            for (; c + 4 <= channels; c += 4)
              wasm_v128_store(target + c, madd(wasm_v128_load(g + c), s, wasm_v128_load(target + c)));
            for (; c < channels; c++) target[c] += g[c] * scale;
          }
        }
      }
    }
  }
}
