// The one place that knows which compute backends were compiled in.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"

namespace tandem {

// Names of the compiled backends, e.g. {"cpu", "cuda"}.
std::vector<std::string> compiled_backends();
// Number of usable CUDA devices at run time (0 without the CUDA backend or a GPU).
int cuda_device_count();

struct CudaBackendOptions {
  int device = 0;                      // CUDA device ordinal
  size_t memory_bytes = size_t{1} << 30;  // the one up-front device allocation (weights, KV, workspace)
  DType activation_dtype = DType::kF16;   // F16 or BF16
};
// The CUDA backend; kUnavailable when it was not compiled in or no GPU is there,
// kResourceExhausted when memory_bytes cannot be allocated.
StatusOr<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendOptions& options = {});

}  // namespace tandem
