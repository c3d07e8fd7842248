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
// Measures the device overheads the memory planner budgets for (context,
// cuBLAS, streams, graphs) on `device`, as a JSON object in text; an error
// without the CUDA backend or a GPU. See docs/memory.md.
StatusOr<std::string> measure_cuda_overheads_json(int device);

struct BackendOptions {
  int cpu_threads = 0;        // CPU backend threads; <= 0: all cores
  bool cpu_blas_prefill = false;  // OpenBLAS for prefill (faster, not batch invariant)
  int cuda_device = 0;  // CUDA device index
  // CUDA: the one up-front device allocation; 0 = 90% of the device's free memory.
  size_t cuda_memory_bytes = 0;
  DType cuda_activation_dtype = DType::kF16;  // F16 or BF16
};

// device: "cpu", "cuda", or "auto" (cuda when compiled in and a GPU is usable,
// else cpu). kUnavailable with a one-line reason when "cuda" cannot be had.
StatusOr<std::unique_ptr<Backend>> create_backend(const std::string& device,
                                                   const BackendOptions& options = {});

struct CudaBackendOptions {
  int device = 0;                      // CUDA device ordinal
  size_t memory_bytes = size_t{1} << 30;  // the one up-front device allocation (weights, KV, workspace)
  DType activation_dtype = DType::kF16;   // F16 or BF16
  // 0: the first kernels validated on the GPU (docs/cuda.md); 1: ldmatrix int4 GEMV and
  // batched-load attention; 2 (default): the CUDA-core int4 GEMV for M <= 4 (variant 0
  // kernels otherwise), 1.5-2x faster than 0 at batch 1 on the H100.
  int kernel_variant = 2;
  // A step's kernels are scheduled while the previous one drains (programmatic
  // dependent launch, sm_90): variant 2's GEMV starts its weight loads early.
  // TANDEM_CUDA_PDL=0 turns it off in create_backend.
  bool pdl = true;
  // Variant 2's GEMV reloads half of a warp's 4 tiles while it uses the other
  // half (TANDEM_CUDA_GEMV_PREFETCH=1); off: all 4, then none in flight while
  // it computes (the session-3 kernel). Off by default until measured faster
  // (docs/cuda-decode-history.md, "Decode speed, session 4").
  bool gemv_prefetch = false;
  // Variant 2's GEMV loads each round's scales and zeros with its weights
  // (group sizes that are multiples of 128) instead of after them, so a round
  // waits one memory round trip, not two; TANDEM_CUDA_GEMV_SCALE_AHEAD=0: after.
  // +5% batch-1 decode on the H100 (docs/cuda-decode.md, session 9).
  bool gemv_scale_ahead = true;
  // Variant 2's GEMV keeps this many rounds of 4 tiles per warp in flight
  // through shared memory (cp.async), refilling each as it is used, instead
  // of 4 tiles in registers; 2-4, fewer where shared memory is short; 0: off
  // (TANDEM_CUDA_GEMV_RING=N). Off: slower at every depth measured (docs/cuda-decode-history.md, session 8).
  int gemv_ring = 0;
  // The ring only for layers of at most this many packed weight bytes (the
  // small q/k/v and o projections, whose fixed cost the ring's early loads
  // hide); 0: every layer (TANDEM_CUDA_GEMV_RING_MAX_MB=N).
  size_t gemv_ring_max_bytes = 0;
  // At most this many warps along K in a GEMV block (1-8; TANDEM_CUDA_GEMV_MAX_PARTS):
  // fewer leave room on each SM for the next kernel's blocks to start early.
  int gemv_max_parts = 8;
  // copy_host_to_device waits for the copy (and so for every kernel before it)
  // before returning (TANDEM_CUDA_UPLOAD_SYNC=1); off, it returns once the
  // driver has staged the host bytes, so the engine can queue a step while the
  // one before still runs (ModelRunner::overlaps_steps). Off: the same speed
  // without overlap (session 10).
  bool upload_sync = false;
  // RMSNorm in the prologue and the residual add (or SwiGLU) in the epilogue of
  // the decode GEMVs (Backend::linear_fused) for models whose normed inputs
  // are at most fused_norms_max_width wide; wider ones run separate norm and
  // SwiGLU kernels. Every GEMV block re-reads and re-reduces x for its norm,
  // which costs more the wider x is: fused, Mistral-7B (4096) decodes at 457
  // tok/s against 438, DeepSeek-33B (7168) at 112.2 against 113.6 (batch 1,
  // H100, one run; docs/cuda-decode.md, session 11). TANDEM_CUDA_FUSED_NORMS=1
  // fuses at every width, =0 at none.
  bool fused_norms = true;
  int fused_norms_max_width = 4096;
  // SwiGLU in the epilogue of the decode GEMV of a fused gate|up layer
  // (Backend::linear_fused with LinearFusion::swiglu); TANDEM_CUDA_FUSED_SWIGLU=0: off.
  bool fused_swiglu = true;
  // The decode attention's last split block merges the splits, no combine
  // kernel (TANDEM_CUDA_FUSED_COMBINE=0: the combine kernel). +2% at batch 1
  // on the H100 (docs/cuda-decode-history.md, "Decode speed, session 5").
  bool attention_fused_combine = true;
  // Decode steps rotate q and the new K (and write the K/V rows to the cache)
  // inside the decode attention kernel (Backend::rope_kv_attention);
  // TANDEM_CUDA_FUSED_ROPE=0: the separate RoPE + KV-write kernel.
  bool attention_fused_rope = true;
  // The decode attention reads the step's metadata and its first K/V rows
  // before waiting for the kernel before it (PDL), reloading each sequence's
  // newest row after the wait (TANDEM_CUDA_ATTN_EARLY=1). Only for callers that
  // write no other cache rows in the op just before it and sync the stream
  // between steps, as Model does (TANDEM_CUDA_ATTN_EARLY=0: off). +1.6% at
  // batch 1 on the H100, +3.7% with the fused merge (docs/cuda-decode.md).
  bool attention_early_loads = true;
  // The decode attention kernel built for exactly the model's query heads per
  // block (4, 7 or 8; others use the general one): half the unrolled code for a
  // group of 4, and that code is fetched cold on every SM each layer
  // (TANDEM_CUDA_ATTN_EXACT_GROUP=0: the general kernel).
  bool attention_exact_group = true;
  // The decode attention's block that writes the new token's K/V row scores it
  // from its own copy in shared memory (no reload from L2 after the barrier),
  // and the merging block loads 16 splits' partials at a time, not 8: two L2
  // round trips fewer on the step's critical path. Same results bit for bit
  // (TANDEM_CUDA_ATTN_LEAN_TAIL=0: the reload and batches of 8).
  bool attention_lean_tail = true;
  // Most key splits of the decode attention kernel (1 to 32; TANDEM_CUDA_DECODE_SPLITS).
  // A captured decode graph serves every context length, so it takes this many
  // whenever the batch alone would not fill the GPU twice over.
  int decode_attention_max_splits = 32;
  // Decode steps run as captured CUDA graphs (Backend::supports_graphs); the
  // environment variable TANDEM_CUDA_GRAPHS=0 turns them off in create_backend.
  bool graphs = true;
  // int4 linears of 16 < M <= 256 rows (decode batches of 17..256 sequences) run
  // on the tensor-core int4 GEMM (int4_gemm.cu), which reads the packed weights
  // directly; off: they dequantize the layer to fp16 and call cuBLASLt, as larger
  // M always do. TANDEM_CUDA_INT4_TC=0 turns it off in create_backend. 2.6-3.5x
  // the dequantize path at batch 32 on the H100 (docs/cuda.md, "Tensor-core int4
  // GEMM for decode batches").
  bool int4_tc_gemm = true;
  // Sequences with at least this many query tokens in a step take the tensor-core
  // prefill attention kernel; 0 sends every token to the CUDA-core kernel.
  int attention_prefill_min_query = 16;
};
// The CUDA backend; kUnavailable when it was not compiled in or no GPU is there,
// kResourceExhausted when memory_bytes cannot be allocated.
StatusOr<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendOptions& options = {});

}  // namespace tandem
