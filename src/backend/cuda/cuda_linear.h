// The CUDA backend's prepared linear layer and how it is made: from a
// checkpoint's tensors (repacked to the tiled int4 layout, int4_layout.h, or
// dense in the activation type) or drawn in place (--load-format dummy).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "backend/backend.h"
#include "backend/cuda/kernels.h"
#include "common/check.h"
#include "common/status.h"

namespace tandem::cuda {

// Kernel element type of a float dtype (CHECK-fails on any other).
inline ElemType elem(DType t) {
  switch (t) {
    case DType::kF32: return ElemType::kF32;
    case DType::kF16: return ElemType::kF16;
    case DType::kBF16: return ElemType::kBF16;
    default: break;
  }
  CHECK_MSG(false, "not a float dtype: " << dtype_name(t));
  return ElemType::kF32;
}

class CudaLinear : public PreparedLinear {
 public:
  int64_t num_out() const override { return N; }
  int64_t num_in() const override { return K; }
  size_t nbytes() const override {
    return weight.bytes() + qweight.bytes() + scale_zero.bytes() + perm.bytes() + bias.bytes();
  }

  bool int4 = false;
  int64_t N = 0, K = 0;
  int group_size = 0;
  DType dtype = DType::kF16;  // dense weight / scales / bias type (= activation type)
  DeviceBuffer weight;      // dense [N, K]
  DeviceBuffer qweight;     // int4 tiled
  DeviceBuffer scale_zero;  // scales [K/G, N] then zeros [N, K/G]
  DeviceBuffer perm;        // [K] or empty
  DeviceBuffer bias;        // [N] or empty
};

// Backend::prepare_linear: validates w (kInvalidArgument naming w.name) and
// uploads it through `be` in activation type `act`, int4 repacked.
StatusOr<std::unique_ptr<PreparedLinear>> prepare_cuda_linear(Backend& be, const LinearWeight& w, DType act);
// Backend::prepare_random_linear: the prepared layout drawn in place on `stream`.
StatusOr<std::unique_ptr<PreparedLinear>> prepare_random_cuda_linear(Backend& be, const LinearWeight& w, DType act,
                                                                     uint64_t seed, cudaStream_t stream);

}  // namespace tandem::cuda
