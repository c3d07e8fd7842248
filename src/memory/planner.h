// The memory planner: for a set of models and one budget in bytes, decides
// before anything is allocated how many bytes each model's weights, workspace
// and fixed overheads take, and how many KV tokens the rest holds. Formulas and
// policy: docs/memory.md. A set that does not fit is a value (fits == false)
// with the shortfall and concrete alternatives, not an error; errors are for
// bad input (unknown model file, max_model_len past a model's limit, ...).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "memory/weights.h"
#include "model/config.h"
#include "memory/overheads.h"

namespace tandem::memory {

enum class PlanDevice { kCuda, kCpu };

// Room in each model's CUDA arena for what the workspace terms do not list:
// 256-byte alignment of every buffer, the batch metadata buffer's doubling,
// fragments left when the backend's scratch grows.
inline constexpr int64_t kCudaArenaSlackBytes = int64_t{64} << 20;

struct PlanModelInput {
  std::string name;    // the served model name ("coder")
  std::string path;    // folder or config.json, for display
  ModelConfig config;
  double weight = 1.0;  // share of the KV reserve and of GPU steps (arbiter)
  int64_t max_model_len = 0;  // this model's own limit (serve's per-model setting); 0: the options'
};

struct PlanOptions {
  int64_t budget_bytes = 0;
  int64_t max_model_len = 0;             // 0: each model's max_position_embeddings
  int64_t max_num_seqs = 256;            // sequences in one step (decode rows, logits rows)
  int64_t max_num_batched_tokens = 8192; // tokens in one step (prefill chunk + decodes)
  int64_t page_size = 16;                // tokens per KV page
  DType kv_dtype = DType::kF16;          // KV cache element type
  PlanDevice device = PlanDevice::kCuda;
  // Part of the KV pool that is guaranteed (split by model weights, each at
  // least one max-length sequence); the rest is shared first come, first served.
  double kv_reserved_fraction = 0.5;
  int64_t chunk_bytes = 0;               // 0: chosen from the models' page sizes
  Overheads overheads = default_cuda_overheads();
};

// Workspace of one model at the step limits, bytes. Buffers are reused across
// layers, so one layer's worth counts; the attention and MLP buffers are
// separate allocations of the model (Model::ensure_workspace), so both count.
struct ActivationBreakdown {
  int64_t residual = 0;         // T x H x a (running residual stream)
  int64_t normed = 0;           // T x H x a (RMSNorm output, GEMM input)
  int64_t attention_phase = 0;  // T x (nq + 2 nkv) x d x a (qkv) + T x nq x d x a (attention out)
  int64_t mlp_phase = 0;        // T x 2I x a (gate|up) + T x I x a (SwiGLU out)
  int64_t layer_out = 0;        // T x H x a (o_proj / down_proj output before the residual add)
  int64_t logits = 0;           // S x V x 4 (fp32 logits of each sequence's last token)
  int64_t sampling = 0;         // S x V x 8 (fp32 probabilities + int32 sort indices for top-k/p)
  int64_t decode_partials = 0;  // S x nq x splits x (d + 2) x 4 (split-K decode attention, GPU)
  int64_t dequant_scratch = 0;  // largest linear K x N x 2 (GPU, steps of > 16 tokens: int4 GEMM partials or dequantized layer)
  int64_t rope_table = 0;       // max_model_len x d x 4 (cos and sin, fp32, d/2 each)
  int64_t metadata = 0;         // S x ceil(L / page) x 4 (block tables) + T x 16 (ids, positions, slots)
  int64_t arena_slack = 0;      // GPU: kCudaArenaSlackBytes (alignment, metadata growth, fragments)
  int64_t total() const {
    return residual + normed + attention_phase + mlp_phase + layer_out + logits + sampling +
           decode_partials + dequant_scratch + rope_table + metadata + arena_slack;
  }
};

struct ModelPlan {
  std::string name, path, quant;
  int64_t weight_bytes = 0;        // exact: sum of the checkpoint's tensor bytes
  int64_t weight_alloc_bytes = 0;  // as the backend holds them (GPU: cuda_resident_weight_bytes, 2 MiB rounded)
  int64_t kv_bytes_per_token = 0;
  int64_t page_bytes = 0;          // page_size x kv_bytes_per_token
  int64_t pages_per_chunk = 0;
  int64_t activation_bytes = 0;    // rounded breakdown total
  ActivationBreakdown activation;
  int64_t overhead_bytes = 0;      // per-model overheads (cuBLAS, graphs, stream)
  int64_t max_model_len = 0;
  int64_t min_kv_tokens = 0;       // one max-length sequence (capped by a sliding window)
  int64_t guaranteed_chunks = 0;
  int64_t planned_chunks = 0;      // guarantee + weighted share of the shared remainder
  int64_t kv_cache_bytes = 0;      // planned_chunks x chunk_bytes
  int64_t guaranteed_kv_tokens = 0;
  int64_t max_kv_tokens = 0;       // every chunk of the pool in this model's pages (others idle)
};

struct Plan {
  PlanOptions options;
  bool fits = false;
  int64_t budget_bytes = 0;
  int64_t process_overhead_bytes = 0;  // CUDA context, once
  int64_t fixed_bytes = 0;             // process overhead + all weights, workspaces, per-model overheads
  int64_t required_bytes = 0;          // fixed + every model's minimum KV (in whole chunks)
  int64_t shortfall_bytes = 0;         // required - budget when it does not fit
  int64_t chunk_bytes = 0;
  int64_t num_chunks = 0;              // KV pool size in chunks
  int64_t kv_pool_bytes = 0;           // num_chunks x chunk_bytes
  int64_t total_bytes = 0;             // fixed + kv_pool: what the process will hold, <= budget
  int64_t shared_chunks = 0;           // not guaranteed to anyone
  std::vector<ModelPlan> models;
  std::string reason;                     // why it does not fit (one line)
  std::vector<std::string> alternatives;  // what would make it fit, each concrete
};

// Errors: no models, a duplicate name, options out of range, max_model_len
// above a model's max_position_embeddings.
StatusOr<Plan> make_plan(const std::vector<PlanModelInput>& models, const PlanOptions& options);

ActivationBreakdown activation_breakdown(const ModelConfig& config, const PlanOptions& options, int64_t max_model_len);

}  // namespace tandem::memory
