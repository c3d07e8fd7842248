// Inner loops of the CPU backend, in a scalar and an AVX2/FMA/F16C version;
// the backend picks one set at construction (no global dispatch state).
#pragma once

#include <cstdint>

namespace tandem::cpu {

// Int4 blocks: 32 values in 16 bytes; byte j holds value j (low nibble) and
// value j + 16 (high nibble), so both halves multiply contiguous x.
constexpr int kQ4Block = 32;
// Output columns per dense weight panel (one AVX2 register of f32).
constexpr int kPanelWidth = 8;

struct Kernels {
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  // sum over nblocks blocks of q * x (raw nibbles, zero not subtracted).
  float (*dot_q4)(const uint8_t* q, const float* x, int64_t nblocks);
  // dot_q4 for nrows activation rows (x + r * ldx) against one weight row:
  // bitwise equal to dot_q4 on each row whatever nrows (batch invariance),
  // but the nibbles are unpacked once per block of rows.
  void (*dot_q4_rows)(const uint8_t* q, const float* x, int64_t ldx, int nrows, int64_t nblocks, float* out);
  // Dense weights packed in panels [npanels][k][kPanelWidth] (dtype f32, f16
  // or bf16 per function): out[r * ldo + p * kPanelWidth + j] = sum over i of
  // W[p, i, j] * x[r * ldx + i], as one fused multiply-add chain in increasing
  // i starting from 0 (so equal bitwise whatever nrows and npanels).
  void (*panel_f32)(const void* w, int64_t k, int npanels, const float* x, int64_t ldx, int nrows, float* out,
                    int64_t ldo);
  void (*panel_f16)(const void* w, int64_t k, int npanels, const float* x, int64_t ldx, int nrows, float* out,
                    int64_t ldo);
  void (*panel_bf16)(const void* w, int64_t k, int npanels, const float* x, int64_t ldx, int nrows, float* out,
                     int64_t ldo);
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n);  // y += a x
  void (*f16_to_f32_row)(const uint16_t* in, float* out, int64_t n);
  void (*bf16_to_f32_row)(const uint16_t* in, float* out, int64_t n);
  const char* name;
};

// AVX2 when the CPU has avx2+fma+f16c (and allow_simd), else scalar.
Kernels select_kernels(bool allow_simd = true);

}  // namespace tandem::cpu
