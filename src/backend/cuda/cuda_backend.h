// The CUDA backend's factory (plain C++ header: no CUDA types).
#pragma once

#include <memory>

#include "backend/backend.h"
#include "backend/registry.h"
#include "common/status.h"

namespace tandem::cuda {

// One stream at a time (low or high priority, Backend::set_step_priority), one
// up-front device allocation of options.memory_bytes.
StatusOr<std::unique_ptr<Backend>> create_cuda_backend(const CudaBackendOptions& options);

}  // namespace tandem::cuda
