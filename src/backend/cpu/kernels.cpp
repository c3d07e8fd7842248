#include "backend/cpu/kernels.h"

#include <immintrin.h>

#include "backend/dtype.h"

namespace tandem::cpu {
namespace {

// ---- scalar ----
float dot_f32_scalar(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (float v : acc) s += v;
  return s;
}
float dot_f16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}
float dot_bf16_scalar(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}
float dot_q4_scalar(const uint8_t* q, const float* x, int64_t nblocks) {
  float s = 0;
  for (int64_t b = 0; b < nblocks; ++b, q += 16, x += kQ4Block)
    for (int j = 0; j < 16; ++j) s += static_cast<float>(q[j] & 15) * x[j] + static_cast<float>(q[j] >> 4) * x[j + 16];
  return s;
}
// Multi-row versions: each row by the one-row kernel (same arithmetic).
void dot_f32_rows_scalar(const float* w, const float* x, int64_t ldx, int nrows, int64_t n, float* out) {
  for (int r = 0; r < nrows; ++r) out[r] = dot_f32_scalar(w, x + r * ldx, n);
}
void dot_f16_rows_scalar(const uint16_t* w, const float* x, int64_t ldx, int nrows, int64_t n, float* out) {
  for (int r = 0; r < nrows; ++r) out[r] = dot_f16_scalar(w, x + r * ldx, n);
}
void dot_bf16_rows_scalar(const uint16_t* w, const float* x, int64_t ldx, int nrows, int64_t n, float* out) {
  for (int r = 0; r < nrows; ++r) out[r] = dot_bf16_scalar(w, x + r * ldx, n);
}
void dot_q4_rows_scalar(const uint8_t* q, const float* x, int64_t ldx, int nrows, int64_t nblocks, float* out) {
  for (int r = 0; r < nrows; ++r) out[r] = dot_q4_scalar(q, x + r * ldx, nblocks);
}
void axpy_scalar(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
void f16_row_scalar(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(in[i]);
}
void bf16_row_scalar(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(in[i]);
}

// ---- AVX2 ----
#define TANDEM_AVX2 __attribute__((target("avx2,fma,f16c")))

TANDEM_AVX2 inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

TANDEM_AVX2 inline __m256 bf16x8_to_f32(const uint16_t* p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// hsum of four vectors at once, each with exactly hsum's additions: per row
// t = lo + hi (lanes t0..t3), then (t0 + t2) + (t1 + t3).
TANDEM_AVX2 inline void hsum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3, float* out) {
  __m128 t0 = _mm_add_ps(_mm256_castps256_ps128(v0), _mm256_extractf128_ps(v0, 1));
  __m128 t1 = _mm_add_ps(_mm256_castps256_ps128(v1), _mm256_extractf128_ps(v1, 1));
  __m128 t2 = _mm_add_ps(_mm256_castps256_ps128(v2), _mm256_extractf128_ps(v2, 1));
  __m128 t3 = _mm_add_ps(_mm256_castps256_ps128(v3), _mm256_extractf128_ps(v3, 1));
  _MM_TRANSPOSE4_PS(t0, t1, t2, t3);  // now t_j holds lane j of every row
  _mm_storeu_ps(out, _mm_add_ps(_mm_add_ps(t0, t2), _mm_add_ps(t1, t3)));
}

// Multi-row dots: R activation rows against one weight row, so each weight
// vector is loaded (and converted) once for R rows. Row r's accumulators see
// exactly the FMA sequence of the one-row kernel (two accumulators over
// alternating 8-wide chunks, the same horizontal sum, fused tail), so a
// result never depends on how many rows were processed with it: that is the
// CPU backend's batch invariance.
template <int R, typename LoadW>
TANDEM_AVX2 inline void dot_rows_avx2(LoadW w, const float* x, int64_t ldx, int64_t n, float* out) {
  __m256 a0[R], a1[R];  // fully unrolled so they live in registers
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = w.load8(i), w1 = w.load8(i + 8);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * ldx + i), a0[r]);
      a1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + r * ldx + i + 8), a1[r]);
    }
  }
  // At most one 8-wide chunk left: into a0.
  if (i + 8 <= n) {
    const __m256 w0 = w.load8(i);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + r * ldx + i), a0[r]);
    i += 8;
  }
  float sums[R];
  if constexpr (R == 4) {
    hsum4(_mm256_add_ps(a0[0], a1[0]), _mm256_add_ps(a0[1], a1[1]), _mm256_add_ps(a0[2], a1[2]),
          _mm256_add_ps(a0[3], a1[3]), sums);
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) sums[r] = hsum(_mm256_add_ps(a0[r], a1[r]));
  }
  for (int r = 0; r < R; ++r) {
    __m128 s = _mm_set_ss(sums[r]);
    for (int64_t j = i; j < n; ++j) s = _mm_fmadd_ss(_mm_set_ss(w.load1(j)), _mm_set_ss(x[r * ldx + j]), s);
    out[r] = _mm_cvtss_f32(s);
  }
}

// Weight loaders: 8 values from position i, or one, as f32.
struct LoadF32 {
  const float* w;
  TANDEM_AVX2 __m256 load8(int64_t i) const { return _mm256_loadu_ps(w + i); }
  float load1(int64_t i) const { return w[i]; }
};
struct LoadF16 {
  const uint16_t* w;
  TANDEM_AVX2 __m256 load8(int64_t i) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
  }
  float load1(int64_t i) const { return f16_to_f32(w[i]); }
};
struct LoadBF16 {
  const uint16_t* w;
  TANDEM_AVX2 __m256 load8(int64_t i) const { return bf16x8_to_f32(w + i); }
  float load1(int64_t i) const { return bf16_to_f32(w[i]); }
};

// Blocks of 4 rows (8 accumulators + 2 weight registers fit the 16 ymm
// registers), then single rows.
template <typename LoadW>
TANDEM_AVX2 inline void dot_rows_dispatch(LoadW load_w, const float* x, int64_t ldx, int nrows, int64_t n,
                                          float* out) {
  int r = 0;
  for (; r + 4 <= nrows; r += 4) dot_rows_avx2<4>(load_w, x + r * ldx, ldx, n, out + r);
  for (; r < nrows; ++r) dot_rows_avx2<1>(load_w, x + r * ldx, ldx, n, out + r);
}

TANDEM_AVX2 float dot_f32_avx2(const float* a, const float* b, int64_t n) {
  float out;
  dot_rows_avx2<1>(LoadF32{a}, b, 0, n, &out);
  return out;
}
TANDEM_AVX2 float dot_f16_avx2(const uint16_t* w, const float* x, int64_t n) {
  float out;
  dot_rows_avx2<1>(LoadF16{w}, x, 0, n, &out);
  return out;
}
TANDEM_AVX2 float dot_bf16_avx2(const uint16_t* w, const float* x, int64_t n) {
  float out;
  dot_rows_avx2<1>(LoadBF16{w}, x, 0, n, &out);
  return out;
}
TANDEM_AVX2 void dot_f32_rows_avx2(const float* w, const float* x, int64_t ldx, int nrows, int64_t n, float* out) {
  dot_rows_dispatch(LoadF32{w}, x, ldx, nrows, n, out);
}
TANDEM_AVX2 void dot_f16_rows_avx2(const uint16_t* w, const float* x, int64_t ldx, int nrows, int64_t n,
                                   float* out) {
  dot_rows_dispatch(LoadF16{w}, x, ldx, nrows, n, out);
}
TANDEM_AVX2 void dot_bf16_rows_avx2(const uint16_t* w, const float* x, int64_t ldx, int nrows, int64_t n,
                                    float* out) {
  dot_rows_dispatch(LoadBF16{w}, x, ldx, nrows, n, out);
}

// Int4: the nibbles of a block are unpacked once for R rows; per row the same
// accumulation as the one-row kernel.
template <int R>
TANDEM_AVX2 inline void dot_q4_rows_avx2(const uint8_t* q, const float* x, int64_t ldx, int64_t nblocks,
                                         float* out) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  __m256 a0[R], a1[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nblocks; ++b, q += 16, x += kQ4Block) {
    __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
    __m128i lo = _mm_and_si128(bytes, mask);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    __m256 l0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
    __m256 l1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
    __m256 h0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
    __m256 h1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const float* xr = x + r * ldx;
      a0[r] = _mm256_fmadd_ps(l0, _mm256_loadu_ps(xr), a0[r]);
      a1[r] = _mm256_fmadd_ps(l1, _mm256_loadu_ps(xr + 8), a1[r]);
      a0[r] = _mm256_fmadd_ps(h0, _mm256_loadu_ps(xr + 16), a0[r]);
      a1[r] = _mm256_fmadd_ps(h1, _mm256_loadu_ps(xr + 24), a1[r]);
    }
  }
  if constexpr (R == 4) {
    hsum4(_mm256_add_ps(a0[0], a1[0]), _mm256_add_ps(a0[1], a1[1]), _mm256_add_ps(a0[2], a1[2]),
          _mm256_add_ps(a0[3], a1[3]), out);
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) out[r] = hsum(_mm256_add_ps(a0[r], a1[r]));
}

TANDEM_AVX2 float dot_q4_avx2(const uint8_t* q, const float* x, int64_t nblocks) {
  float out;
  dot_q4_rows_avx2<1>(q, x, 0, nblocks, &out);
  return out;
}
TANDEM_AVX2 void dot_q4_rows_avx2_n(const uint8_t* q, const float* x, int64_t ldx, int nrows, int64_t nblocks,
                                    float* out) {
  int r = 0;
  for (; r + 4 <= nrows; r += 4) dot_q4_rows_avx2<4>(q, x + r * ldx, ldx, nblocks, out + r);
  for (; r < nrows; ++r) dot_q4_rows_avx2<1>(q, x + r * ldx, ldx, nblocks, out + r);
}

TANDEM_AVX2 void axpy_avx2(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

TANDEM_AVX2 void f16_row_avx2(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  for (; i < n; ++i) out[i] = f16_to_f32(in[i]);
}

TANDEM_AVX2 void bf16_row_avx2(const uint16_t* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, bf16x8_to_f32(in + i));
  for (; i < n; ++i) out[i] = bf16_to_f32(in[i]);
}

}  // namespace

Kernels select_kernels(bool allow_simd) {
  __builtin_cpu_init();
  const bool avx2 = allow_simd && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (avx2)
    return {dot_f32_avx2,      dot_f16_avx2,      dot_bf16_avx2,      dot_q4_avx2,
            dot_f32_rows_avx2, dot_f16_rows_avx2, dot_bf16_rows_avx2, dot_q4_rows_avx2_n,
            axpy_avx2,         f16_row_avx2,      bf16_row_avx2,      "avx2"};
  return {dot_f32_scalar,      dot_f16_scalar,      dot_bf16_scalar,      dot_q4_scalar,
          dot_f32_rows_scalar, dot_f16_rows_scalar, dot_bf16_rows_scalar, dot_q4_rows_scalar,
          axpy_scalar,         f16_row_scalar,      bf16_row_scalar,      "scalar"};
}

}  // namespace tandem::cpu
