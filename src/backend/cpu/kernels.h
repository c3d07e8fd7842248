// Inner loops of the CPU backend, in a scalar and an AVX2/FMA/F16C version;
// the backend picks one set at construction (no global dispatch state).
#pragma once

#include <cstdint>

namespace tandem::cpu {

// Int4 blocks: 32 values in 16 bytes; byte j holds value j (low nibble) and
// value j + 16 (high nibble), so both halves multiply contiguous x.
constexpr int kQ4Block = 32;

struct Kernels {
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  float (*dot_f16)(const uint16_t* w, const float* x, int64_t n);
  float (*dot_bf16)(const uint16_t* w, const float* x, int64_t n);
  // sum over nblocks blocks of q * x (raw nibbles, zero not subtracted).
  float (*dot_q4)(const uint8_t* q, const float* x, int64_t nblocks);
  // The same dots for nrows activation rows (x + r * ldx) against one weight
  // row, out[r]; bitwise equal to the one-row kernels on each row, whatever
  // nrows (batch invariance), but each weight vector is read once per block.
  void (*dot_f32_rows)(const float* w, const float* x, int64_t ldx, int nrows, int64_t n, float* out);
  void (*dot_f16_rows)(const uint16_t* w, const float* x, int64_t ldx, int nrows, int64_t n, float* out);
  void (*dot_bf16_rows)(const uint16_t* w, const float* x, int64_t ldx, int nrows, int64_t n, float* out);
  void (*dot_q4_rows)(const uint8_t* q, const float* x, int64_t ldx, int nrows, int64_t nblocks, float* out);
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n);  // y += a x
  void (*f16_to_f32_row)(const uint16_t* in, float* out, int64_t n);
  void (*bf16_to_f32_row)(const uint16_t* in, float* out, int64_t n);
  const char* name;
};

// AVX2 when the CPU has avx2+fma+f16c (and allow_simd), else scalar.
Kernels select_kernels(bool allow_simd = true);

}  // namespace tandem::cpu
