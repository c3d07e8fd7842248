// Int4 formats (FORMATS.md): the reference definitions of AWQ-GEMM and GPTQ
// packing, used to validate layers, by tests, and as the scalar oracle for fast
// kernels. Fast paths live in the backends.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"

namespace tandem {

// AWQ: column 8c + j of a packed word sits in nibble kAwqRev[j];
// nibble i holds column 8c + kAwqOrder[i].
inline constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
inline constexpr int kAwqRev[8] = {0, 4, 1, 5, 2, 6, 3, 7};

inline int32_t read_i32(const TensorView& t, int64_t i) {
  int32_t v;
  std::memcpy(&v, static_cast<const char*>(t.data) + 4 * i, 4);
  return v;
}
inline int nibble(int32_t word, int i) { return static_cast<int>((static_cast<uint32_t>(word) >> (4 * i)) & 0xfu); }

// Quantized value q[k, n] and zero z[g, n] (before zero_offset) of a layer.
int awq_q(const LinearWeight& w, int64_t k, int64_t n);
int awq_zero(const LinearWeight& w, int64_t g, int64_t n);
int gptq_q(const LinearWeight& w, int64_t k, int64_t n);
int gptq_zero(const LinearWeight& w, int64_t g, int64_t n);
// Group of input row k (g_idx[k], or k / G without g_idx).
int64_t gptq_group(const LinearWeight& w, int64_t k);
int64_t num_groups(const LinearWeight& w);

// Checks every view's dtype and shape against the format and (N, K, G); for
// GPTQ also that g_idx values lie in [0, num_groups). Errors name w.name.
Status validate_linear(const LinearWeight& w);

// The whole weight as fp32 W[n, k] (HF layout), by the definitions above. For
// tests and small references only: never used to load a model.
std::vector<float> dequantize_reference(const LinearWeight& w);

// Packers (tests, synthetic checkpoints): q and zeros are row-major int values
// in [0, 15]; q is [K, N], zeros [num_groups, N].
std::vector<int32_t> pack_awq(const std::vector<uint8_t>& values, int64_t rows, int64_t cols);  // [rows, cols/8]
std::vector<int32_t> pack_gptq_qweight(const std::vector<uint8_t>& q, int64_t k, int64_t n);   // [K/8, N]
std::vector<int32_t> pack_gptq_qzeros(const std::vector<uint8_t>& zeros, int64_t groups, int64_t n);  // [groups, N/8]

}  // namespace tandem
