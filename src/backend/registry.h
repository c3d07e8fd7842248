// The one place that knows which compute backends were compiled in.
#pragma once

#include <string>
#include <vector>

namespace tandem {

// Names of the compiled backends, e.g. {"cpu", "cuda"}.
std::vector<std::string> compiled_backends();
// Number of usable CUDA devices at run time (0 without the CUDA backend or a GPU).
int cuda_device_count();

}  // namespace tandem
