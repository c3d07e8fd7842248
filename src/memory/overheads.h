// Fixed device-memory overheads that no tensor accounts for. The defaults are
// ESTIMATES until measured on the GPU machine with the probe
// (`tandem plan --measure-overheads`, see docs/memory.md); a measured file is
// passed back with `tandem plan --overheads FILE.json`.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "memory/byte_size.h"

namespace tandem::memory {

// Physical granularity of cudaMalloc on Hopper: each arena (weights, KV pool,
// a model's workspace) is rounded up to it.
inline constexpr int64_t kDeviceAllocGranularity = 2 * kMiB;

// NOT YET MEASURED (H100/H200, CUDA 13, lazy module loading): the primary
// context plus the driver's reservation as cudaMemGetInfo sees them right
// after cudaFree(0). Public reports for H100 with CUDA 12 are 0.4-0.6 GiB.
inline constexpr int64_t kDefaultCudaContextBytes = 512 * kMiB;
// NOT YET MEASURED: cuBLAS + cuBLASLt handles on one stream, after the first
// fp16 GEMM (cuBLAS allocates its default workspace lazily: 32 MiB on Hopper)
// plus the explicit cublasLt workspace the backend sets (32 MiB).
inline constexpr int64_t kDefaultCublasBytesPerModel = 96 * kMiB;
// NOT YET MEASURED: instantiated decode CUDA graphs of one model (one graph per
// captured batch size; buffers are static so graphs hold only their nodes).
inline constexpr int64_t kDefaultCudaGraphBytesPerModel = 128 * kMiB;
// NOT YET MEASURED: a CUDA stream and its events.
inline constexpr int64_t kDefaultStreamBytesPerModel = 2 * kMiB;

struct Overheads {
  int64_t cuda_context_bytes = 0;           // once per process
  int64_t cublas_bytes_per_model = 0;       // each model has its own stream and handles
  int64_t cuda_graph_bytes_per_model = 0;
  int64_t stream_bytes_per_model = 0;
  std::string source;                       // "estimated defaults", "measured: FILE", "cpu"

  int64_t per_model_bytes() const {
    return cublas_bytes_per_model + cuda_graph_bytes_per_model + stream_bytes_per_model;
  }
};

Overheads default_cuda_overheads();
// The CPU backend has no device context; the budget bounds host memory for
// weights, KV and workspace only.
Overheads cpu_overheads();
// Reads the JSON that the probe prints: {"cuda_context_bytes", "cublas_bytes_per_model",
// "cuda_graph_bytes_per_model", "stream_bytes_per_model", ...}. Missing keys keep the defaults.
StatusOr<Overheads> load_overheads_json(const std::string& path);

}  // namespace tandem::memory
