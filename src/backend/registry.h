// The one place that knows which compute backends were compiled in.
#pragma once

#include <string>
#include <vector>

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

}  // namespace tandem
