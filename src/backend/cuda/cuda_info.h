// Device discovery for the CUDA backend; plain C++ header (no CUDA types).
#pragma once

#include <cstddef>
#include <string>

namespace tandem::cuda {

// Usable devices; 0 when the driver or a GPU is missing (never throws).
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" or an empty string.
std::string device_description(int device);

}  // namespace tandem::cuda

namespace tandem::cuda {
// Free memory on `device` now (0 when it cannot be queried).
size_t free_memory_bytes(int device);
}  // namespace tandem::cuda
