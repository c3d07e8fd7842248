// Host-side conversion of AWQ / GPTQ checkpoint tensors into the CUDA backend's
// tiled int4 layout (int4_layout.h). Plain C++; runs on all host cores.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"

namespace tandem::cuda {

struct Int4Packed {
  int K = 0, N = 0, group_size = 0;
  std::vector<uint32_t> qweight;     // K * N / 8 words, tiled
  std::vector<uint16_t> scale_zero;  // scales [K/G][N], then zeros [N][K/G] as magic + zero (fp16/bf16 bits)
  std::vector<int32_t> perm;         // [K] act-order input permutation, empty if none
};

// Validates the layer (kInvalidArgument naming w.name and the tensor) and repacks it.
// act_type (kF16 or kBF16) is the activation type the kernels will run in.
StatusOr<Int4Packed> repack_int4(const LinearWeight& w, DType act_type);

// The value of element (k, n) of the packed layer, dequantized (for tests):
// (q - zero) * scale in fp32, k in packed (permuted) row order.
float int4_packed_value(const Int4Packed& p, DType act_type, int64_t k, int64_t n);

}  // namespace tandem::cuda
