#include "backend/cpu/kernels.h"

#include <immintrin.h>

#include <cmath>

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
float dot_q4_scalar(const uint8_t* q, const float* x, int64_t nblocks) {
  float s = 0;
  for (int64_t b = 0; b < nblocks; ++b, q += 16, x += kQ4Block)
    for (int j = 0; j < 16; ++j) s += static_cast<float>(q[j] & 15) * x[j] + static_cast<float>(q[j] >> 4) * x[j + 16];
  return s;
}
// Panels, scalar: the same single fused chain per output as the AVX2 version.
template <float (*Load)(const void*, int64_t)>
void panel_scalar(const void* w, int64_t k, int npanels, const float* x, int64_t ldx, int nrows, float* out,
                  int64_t ldo) {
  for (int r = 0; r < nrows; ++r)
    for (int p = 0; p < npanels; ++p)
      for (int j = 0; j < kPanelWidth; ++j) {
        float y = 0.0f;
        for (int64_t i = 0; i < k; ++i)
          y = std::fma(Load(w, (p * k + i) * kPanelWidth + j), x[r * ldx + i], y);
        out[r * ldo + p * kPanelWidth + j] = y;
      }
}
float load_f32(const void* w, int64_t i) { return static_cast<const float*>(w)[i]; }
float load_f16(const void* w, int64_t i) { return f16_to_f32(static_cast<const uint16_t*>(w)[i]); }
float load_bf16(const void* w, int64_t i) { return bf16_to_f32(static_cast<const uint16_t*>(w)[i]); }
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

// Weight loaders: 8 values from position i as f32.
struct LoadF32 {
  const float* w;
  TANDEM_AVX2 __m256 load8(int64_t i) const { return _mm256_loadu_ps(w + i); }
};
struct LoadF16 {
  const uint16_t* w;
  TANDEM_AVX2 __m256 load8(int64_t i) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
  }
};
struct LoadBF16 {
  const uint16_t* w;
  TANDEM_AVX2 __m256 load8(int64_t i) const { return bf16x8_to_f32(w + i); }
};

TANDEM_AVX2 float dot_f32_avx2(const float* a, const float* b, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Dense panels: W packed as [panel][K][8] (8 output columns per panel), so one
// 8-wide weight load serves 8 outputs and each activation is broadcast once
// per panel. Every output is one FMA chain in increasing k from 0: exactly
// scalar `y = fmaf(w[k], x[k], y)`, whatever R and P (lanes are
// independent), which is what makes the dense linear batch invariant.
template <int R, int P, typename LoadW, typename T>
TANDEM_AVX2 inline void panel_block(const T* w, int64_t k, int64_t pstride, const float* x, int64_t ldx, float* out,
                                    int64_t ldo) {
  __m256 acc[R][P];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) acc[r][p] = _mm256_setzero_ps();
  for (int64_t i = 0; i < k; ++i) {
    __m256 wv[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) wv[p] = LoadW{w + p * pstride}.load8(i * kPanelWidth);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 xb = _mm256_broadcast_ss(x + r * ldx + i);
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) acc[r][p] = _mm256_fmadd_ps(wv[p], xb, acc[r][p]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) _mm256_storeu_ps(out + r * ldo + p * kPanelWidth, acc[r][p]);
}

// R rows against all panels: P panels at a time (R x P accumulators fit the
// 16 ymm registers with room for the loads), then one at a time.
template <int R, typename LoadW, typename T>
TANDEM_AVX2 inline void panel_rows(const T* w, int64_t k, int npanels, const float* x, int64_t ldx, float* out,
                                   int64_t ldo) {
  constexpr int P = R == 1 ? 8 : R == 2 ? 6 : R == 3 ? 4 : R == 4 ? 3 : 2;
  const int64_t ps = k * kPanelWidth;
  int p = 0;
  for (; p + P <= npanels; p += P) panel_block<R, P, LoadW>(w + p * ps, k, ps, x, ldx, out + p * kPanelWidth, ldo);
  for (; p < npanels; ++p) panel_block<R, 1, LoadW>(w + p * ps, k, ps, x, ldx, out + p * kPanelWidth, ldo);
}

template <typename LoadW, typename T>
TANDEM_AVX2 inline void panel_dispatch(const T* w, int64_t k, int npanels, const float* x, int64_t ldx, int nrows,
                                       float* out, int64_t ldo) {
  int r = 0;
  for (; r + 6 <= nrows; r += 6) panel_rows<6, LoadW>(w, k, npanels, x + r * ldx, ldx, out + r * ldo, ldo);
  switch (nrows - r) {
    case 5: panel_rows<5, LoadW>(w, k, npanels, x + r * ldx, ldx, out + r * ldo, ldo); break;
    case 4: panel_rows<4, LoadW>(w, k, npanels, x + r * ldx, ldx, out + r * ldo, ldo); break;
    case 3: panel_rows<3, LoadW>(w, k, npanels, x + r * ldx, ldx, out + r * ldo, ldo); break;
    case 2: panel_rows<2, LoadW>(w, k, npanels, x + r * ldx, ldx, out + r * ldo, ldo); break;
    case 1: panel_rows<1, LoadW>(w, k, npanels, x + r * ldx, ldx, out + r * ldo, ldo); break;
    default: break;
  }
}

TANDEM_AVX2 void panel_f32_avx2(const void* w, int64_t k, int npanels, const float* x, int64_t ldx, int nrows,
                                float* out, int64_t ldo) {
  panel_dispatch<LoadF32>(static_cast<const float*>(w), k, npanels, x, ldx, nrows, out, ldo);
}
TANDEM_AVX2 void panel_f16_avx2(const void* w, int64_t k, int npanels, const float* x, int64_t ldx, int nrows,
                                float* out, int64_t ldo) {
  panel_dispatch<LoadF16>(static_cast<const uint16_t*>(w), k, npanels, x, ldx, nrows, out, ldo);
}
TANDEM_AVX2 void panel_bf16_avx2(const void* w, int64_t k, int npanels, const float* x, int64_t ldx, int nrows,
                                 float* out, int64_t ldo) {
  panel_dispatch<LoadBF16>(static_cast<const uint16_t*>(w), k, npanels, x, ldx, nrows, out, ldo);
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
    return {dot_f32_avx2,    dot_q4_avx2, dot_q4_rows_avx2_n, panel_f32_avx2, panel_f16_avx2,
            panel_bf16_avx2, axpy_avx2,   f16_row_avx2,       bf16_row_avx2,  "avx2"};
  return {dot_f32_scalar,
          dot_q4_scalar,
          dot_q4_rows_scalar,
          panel_scalar<load_f32>,
          panel_scalar<load_f16>,
          panel_scalar<load_bf16>,
          axpy_scalar,
          f16_row_scalar,
          bf16_row_scalar,
          "scalar"};
}

}  // namespace tandem::cpu
