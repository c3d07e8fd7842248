// Measures the fixed device-memory overheads that the memory planner budgets
// for (memory/overheads.h), as whole-device usage (cudaMemGetInfo: total -
// free), so the CUDA context, cuBLAS workspaces, loaded kernel modules and
// CUDA graphs all count. Plain C++ header (no CUDA types).
#pragma once

#include <string>

#include "common/status.h"

namespace tandem::cuda {

struct OverheadProbeOptions {
  int device = 0;
  int graph_layers = 64;   // layers a captured decode graph spans (largest seed model: 64)
  int nodes_per_layer = 8; // kernels per layer in a decode graph (norm, qkv, rope, attn, o, norm, gate/up, down)
  int num_graphs = 16;     // captured batch sizes per model
};

// One JSON object (text) with cuda_context_bytes, stream_bytes_per_model,
// cublas_bytes_per_model, cuda_graph_bytes_per_model, alloc_granularity_bytes
// and how they were taken. Run on an otherwise idle GPU: everything already in
// use when the probe starts is counted as context.
StatusOr<std::string> measure_overheads_json(const OverheadProbeOptions& options);

}  // namespace tandem::cuda
