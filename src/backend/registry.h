// The one place that knows which compute backends were compiled in.
#pragma once

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
// Measures the device overheads the memory planner budgets for (context,
// cuBLAS, streams, graphs) on `device`, as a JSON object in text; an error
// without the CUDA backend or a GPU. See docs/memory.md.
StatusOr<std::string> measure_cuda_overheads_json(int device);

struct BackendOptions {
  int cpu_threads = 0;  // CPU backend threads; <= 0: all cores
  int cuda_device = 0;  // CUDA device index
};

// device: "cpu", "cuda", or "auto" (cuda when compiled in and a GPU is usable,
// else cpu). kUnavailable with a one-line reason when "cuda" cannot be had.
StatusOr<std::unique_ptr<Backend>> create_backend(const std::string& device,
                                                   const BackendOptions& options = {});

}  // namespace tandem
