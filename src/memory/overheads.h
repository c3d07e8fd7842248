// Fixed device-memory overheads that no tensor accounts for. The defaults were
// measured on an H100 with the probe (`tandem plan --measure-overheads`, see
// docs/memory.md); another card's file is passed with `--overheads FILE.json`
// (`tandem plan` and `tandem serve`).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "memory/byte_size.h"

namespace tandem::memory {

// Physical granularity of cudaMalloc on Hopper: each arena (weights, KV pool,
// a model's workspace) is rounded up to it.
inline constexpr int64_t kDeviceAllocGranularity = 2 * kMiB;

// Measured on the GPU machine (NVIDIA H100 80GB HBM3, driver/runtime CUDA 13.0,
// lazy module loading) with `tandem plan --measure-overheads` (cudaMemGetInfo
// total - free around each step on an idle GPU; raw:
// bench/results/memory_h100_overheads.json, docs/memory.md).
// The primary context plus the driver's reservation right after cudaFree(0).
inline constexpr int64_t kDefaultCudaContextBytes = 552'402'944;  // 526.8 MiB
// cuBLAS + cuBLASLt handles on one stream after fp16 GEMMs 4096x{1,16,256,4096}x4096
// (cuBLAS's lazy workspace and kernel modules); the backend's 32 MiB cuBLASLt
// workspace comes out of its arena and is counted here too.
inline constexpr int64_t kDefaultCublasBytesPerModel = 69'206'016 + (int64_t{32} << 20);  // 66 + 32 MiB
// 16 instantiated graphs of 512 GEMM nodes (a decode graph per captured batch size).
inline constexpr int64_t kDefaultCudaGraphBytesPerModel = 48'234'496;  // 46 MiB
// A stream and its events: below the 2 MiB granularity, measured as 0.
inline constexpr int64_t kDefaultStreamBytesPerModel = 0;

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
