// y[M, N] = x[M, K] · W^T through cuBLASLt (W row-major [N, K], x/y row-major),
// fp32 accumulation; algorithm choices cached per shape.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "backend/cuda/kernels.h"

namespace tandem::cuda {

struct LtGemmArgs {
  const void* w;  // [N, K], w_type
  const void* x;  // [M, K], x_type, row stride x_stride
  void* y;        // [M, N], y_type, row stride y_stride
  int M, N, K;
  int64_t x_stride, y_stride;
  ElemType w_type, x_type, y_type;
};

class LtGemm {
 public:
  LtGemm() = default;
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // false with a message when cuBLASLt cannot start.
  bool init(void* workspace, size_t workspace_bytes, const char** error);
  // Returns the cuBLAS status (CUBLAS_STATUS_SUCCESS = 0).
  int run(const LtGemmArgs& a, cudaStream_t stream);

 private:
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  using Key = std::tuple<int, int, int, int64_t, int64_t, int, int, int>;
  std::map<Key, cublasLtMatmulAlgo_t> algos_;  // engine thread only
};

}  // namespace tandem::cuda
