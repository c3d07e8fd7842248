// Launchers of the CUDA backend's kernels: plain parameter structs (pointers,
// sizes, strides), no STL. Internal to src/backend/cuda (uses cudaStream_t).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>


namespace tandem::cuda {

// Element type of activations, caches and dense weights.
enum class ElemType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

inline size_t elem_size(ElemType t) { return t == ElemType::kF32 ? 4 : 2; }

// Programmatic dependent launch for the step's kernels (launch_pdl in
// cuda_common.cuh): on by default, CudaBackendOptions::pdl turns it off.
// Process-wide; set before any launch or capture.
void set_pdl_enabled(bool on);
bool pdl_enabled();

// ---- elementwise / row ops -------------------------------------------------

// out[i, :] = table[ids[i], :]; ids outside [0, vocab) write zeros.
struct EmbeddingParams {
  const int32_t* ids;  // [num_tokens]
  const void* table;   // [vocab, hidden]
  void* out;           // [num_tokens, hidden]
  int num_tokens, hidden, vocab;
  ElemType type;
};
void launch_embedding(const EmbeddingParams& p, cudaStream_t stream);

// If residual != null: residual[i] += x[i] (in fp32, stored back in `type`)
// and out[i] = rms_norm(residual[i]) * weight; else out[i] = rms_norm(x[i]) * weight.
struct RmsNormParams {
  const void* x;       // [rows, hidden], row stride x_stride (elements)
  void* residual;      // [rows, hidden] or null, row stride hidden
  const void* weight;  // [hidden]
  void* out;           // [rows, hidden], row stride out_stride
  int rows, hidden;
  int64_t x_stride, out_stride;
  float eps;
  ElemType type;         // x, residual, out
  ElemType weight_type;  // weight
  // sm_90: few rows are spread over a cluster of 8 blocks per row (a slice
  // each, the sum of squares shared through distributed shared memory) instead
  // of one block per row. False on older GPUs.
  bool clusters = false;
};
void launch_rms_norm(const RmsNormParams& p, cudaStream_t stream);

// HF rotate-half RoPE in place on q [T, num_q_heads, D] and k [T, num_kv_heads, D]:
// angle_i = position * inv_freq[i] (fp32), i < rot_dim/2.
struct RopeKernelParams {
  void* q;
  void* k;  // may be null
  const int32_t* positions;  // [T]
  const float* inv_freq;     // [rot_dim / 2], linear scaling already folded in
  int num_tokens, num_q_heads, num_kv_heads, head_dim, rot_dim;
  int64_t q_stride, k_stride;  // elements between tokens
  ElemType type;
  // Optional (k_cache != null): the rotated K rows and the V rows also go to
  // their cache slots, as launch_kv_write with these fields.
  const void* v = nullptr;
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  const int32_t* slot_mapping = nullptr;
  int page_size = 0;
  int64_t v_stride = 0, page_stride = 0, token_stride = 0;
};
void launch_rope(const RopeKernelParams& p, cudaStream_t stream);

// out[i, j] = silu(gate[i, j]) * up[i, j], j < inter.
struct SiluMulParams {
  const void* gate;
  const void* up;
  void* out;
  int rows, inter;
  int64_t gate_stride, up_stride, out_stride;
  ElemType type;
};
void launch_silu_mul(const SiluMulParams& p, cudaStream_t stream);

// Writes new K/V rows into the paged cache: token i goes to slot
// slot_mapping[i] = page * page_size + offset (negative slots are skipped).
// Cache addressing: base + page * page_stride + offset * token_stride + head * head_dim.
struct KvWriteParams {
  const void* k;  // [T, num_kv_heads, head_dim], token stride k_stride
  const void* v;
  void* k_cache;
  void* v_cache;
  const int32_t* slot_mapping;  // [T]
  int num_tokens, num_kv_heads, head_dim, page_size;
  int64_t k_stride, v_stride, page_stride, token_stride;  // elements
  ElemType type;
};
void launch_kv_write(const KvWriteParams& p, cudaStream_t stream);

// dst[i] = src[index[i]] for rows of row_bytes bytes (row_bytes even).
struct GatherRowsParams {
  const void* src;
  void* dst;
  const int32_t* index;
  int num_rows;
  int64_t row_bytes, src_stride_bytes, dst_stride_bytes;
};
void launch_gather_rows(const GatherRowsParams& p, cudaStream_t stream);

// For each pair j: block dst[j] of block_bytes bytes = block src[j], in each of
// num_bases regions (e.g. every layer's K and V caches).
struct CopyBlocksParams {
  void* const* bases;      // [num_bases] device array of device pointers
  int num_bases;
  const int32_t* src;      // [num_pairs]
  const int32_t* dst;      // [num_pairs]
  int num_pairs;
  int64_t block_bytes;     // % 16 == 0
};
void launch_copy_blocks(const CopyBlocksParams& p, cudaStream_t stream);

// Splits the columns of src [rows, sum of widths] (bytes) into up to 4 outputs:
// dst[i][r, :] = src[r, col_bytes[i] : col_bytes[i] + width_bytes[i]]. Widths even.
struct SplitColumnsParams {
  const void* src;
  void* dst[4];
  int64_t col_bytes[4], width_bytes[4];
  int num_outs, rows;
  int64_t src_stride_bytes;
};
void launch_split_columns(const SplitColumnsParams& p, cudaStream_t stream);

// Converts n elements between types (e.g. fp16 logits to fp32).
void launch_convert(const void* src, ElemType src_type, void* dst, ElemType dst_type, int64_t n,
                    cudaStream_t stream);

// Random values (backend/random_bits.h; --load-format dummy):
//   kUniform: dst[i] = lo + (hi - lo) * unit(seed, i) in `type`
//   kInteger: dst[i] = offset + int_lo + bits(seed, i) % (int_hi - int_lo + 1) in `type`
//   kNibbles: uint32 words whose 8 nibbles are uniform in [int_lo, int_hi]
enum class RandomFillMode : int { kUniform = 0, kInteger = 1, kNibbles = 2 };
struct RandomFillParams {
  void* dst;
  int64_t n;  // elements (words for kNibbles)
  RandomFillMode mode;
  ElemType type;
  float lo, hi, offset;
  int int_lo, int_hi;
  uint64_t seed;
};
void launch_random_fill(const RandomFillParams& p, cudaStream_t stream);

// ---- int4 GEMM (layout: int4_layout.h) -------------------------------------

struct Int4Weight {
  const uint32_t* qweight;   // tiled, K*N/8 words
  const void* scale_zero;    // scales [K/G][N] then zeros [N][K/G] (magic + zero), `type`
  const int32_t* perm;       // [K] or null (act-order)
  const void* bias;          // [N] or null, `type`
  int K, N, group_size;
};

// What the M <= 4 GEMV (variant 2) can do around the product, saving a kernel
// each: x' = rms_norm(x) * norm_weight (fp32 weight [K]) instead of x, and
// y += residual ([M, N] in the activation type, row stride y_stride; y may
// alias it). int4_gemv_fuses() says whether a call takes them.
struct Int4GemvFusion {
  const float* norm_weight = nullptr;
  float eps = 0.f;
  const void* residual = nullptr;
  // The weight's N columns are [gate | up] (N/2 each); y [M, N/2] = silu(gate) * up,
  // each half rounded to the activation type first, as the separate SwiGLU kernel
  // reads it. No residual with it.
  bool swiglu = false;
};

// y[M, N] = x[M, K] · W + bias for M <= 16 on tensor cores (mma.sync), streaming
// the packed weights once. split-K partial sums go to `partial`
// (int4_gemv_workspace_floats(...) floats), reduced in a fixed order.
struct Int4GemvParams {
  Int4Weight w;
  const void* x;  // [M, K], row stride x_stride (already permuted if w.perm)
  void* y;        // [M, N], row stride y_stride
  int M;
  int64_t x_stride, y_stride;
  float* partial;
  int num_sms;
  int blocks_per_sm;  // split-K target; 0 = default (benchmarks sweep it)
  int variant;        // 0: first validated kernel; 1: ldmatrix + zero folded after the mma;
                      // 2: CUDA-core GEMV for M <= 4 (int4_gemv_v2.cu; blocks_per_sm = 100 + k
                      // forces k warps along K), variant 0 for larger M
  ElemType type;  // x, y, scales (fp16 or bf16)
  ElemType y_type;
  // Variant 2: launch with programmatic dependent launch, so the weight loads
  // start while the previous kernel of the stream finishes (x is read after
  // griddepcontrol.wait).
  bool pdl = false;
  // Variant 2: each warp reloads half of its 4 tiles while it works on the
  // other half (2-4 tiles in flight instead of 4, then none while it computes).
  bool prefetch = false;
  // Variant 2: rounds of 4 tiles per warp kept in flight through shared memory
  // (cp.async) instead of registers; < 2: off. Fewer where shared memory is short.
  int ring = 0;
  // Variant 2: at most this many warps along K per block (1-8).
  int max_parts = 8;
  // Variant 2, group sizes that are whole tiles: each round's scales and zeros
  // load with its weights (one round trip a round instead of two).
  bool scale_ahead = true;
  Int4GemvFusion fuse;  // only where int4_gemv_fuses(*this)
};
// Whether launch_int4_gemv runs this call on variant 2, which takes p.fuse
// (no act-order permutation; the residual needs y in the activation type).
bool int4_gemv_fuses(const Int4GemvParams& p);
int int4_gemv_num_splits(int K, int N, int num_sms, int blocks_per_sm = 0);
size_t int4_gemv_workspace_floats(int K, int N, int num_sms, int blocks_per_sm = 0);
void launch_int4_gemv(const Int4GemvParams& p, cudaStream_t stream);
// Raises the GEMV kernels' shared-memory limit; once per process and device,
// before any launch (launches may then be captured into CUDA graphs).
cudaError_t int4_gemv_configure();
// Variant 2 (int4_gemv_v2.cu): whether it takes this call, its K split, its launcher.
bool int4_gemv_v2_supports(int M, int K, int N, int group_size, ElemType type, ElemType y_type);
// Whether variant 2 can fuse SwiGLU into a [gate | up] layer of N columns.
bool int4_gemv_v2_swiglu(int N, int num_sms);
int int4_gemv_v2_kparts(int K, int N, int num_sms);
cudaError_t int4_gemv_v2_configure();
void launch_int4_gemv_v2(const Int4GemvParams& p, cudaStream_t stream);

// y[M, N] = x[M, K] · W + bias on tensor cores for decode batches (int4_gemm.cu):
// the backend sends 16 < M <= kInt4GemmMaxM here (CudaBackendOptions::int4_tc_gemm),
// larger M to dequantize + cuBLASLt. Needs int4_gemm_supports(); x rows 16-byte
// aligned (x_stride % 8 == 0), y_stride even.
inline constexpr int kInt4GemmMaxM = 256;
struct Int4GemmParams {
  Int4Weight w;
  const void* x;  // [M, K], row stride x_stride (already permuted if w.perm)
  void* y;        // [M, N], row stride y_stride, y_type
  int M;
  int64_t x_stride, y_stride;
  float* partial;  // split-K partials: int4_gemm_workspace_floats(...) floats (for `splits`: splits * M * N)
  int num_sms;
  int splits;      // 0: int4_gemm_num_splits(...); > 0 forces a count (benchmarks sweep it)
  ElemType type;   // x, scales, bias (fp16 or bf16)
  ElemType y_type;  // type or kF32
};
bool int4_gemm_supports(int M, int K, int N, int group_size);
int int4_gemm_num_splits(int M, int K, int N, int num_sms);
size_t int4_gemm_workspace_floats(int M, int K, int N, int num_sms);
void launch_int4_gemm(const Int4GemmParams& p, cudaStream_t stream);
// Raises the GEMM kernels' shared-memory limit (144 KiB); once per process and
// device, before any launch or capture.
cudaError_t int4_gemm_configure();

// out[N][K] (row-major, `type`) = dequantized W^T, for the cuBLAS prefill path.
void launch_int4_dequant(const Int4Weight& w, void* out, ElemType type, cudaStream_t stream);

// ---- attention over the paged cache ---------------------------------------

// The head sizes the attention kernels are instantiated for.
inline bool is_attention_head_dim(int head_dim) { return head_dim == 32 || head_dim == 64 || head_dim == 128; }

// Query token i of sequence s (query_start[s] <= i < query_start[s+1]) sits at
// cache index kv_len[s] - q_len + (i - query_start[s]) and attends (causally)
// to cache indices [max(0, idx - window + 1), idx] (window <= 0: no window).
// Logical token j of sequence s is in page page_indices[page_indptr[s] + j / page_size].
struct AttnKernelParams {
  const void* q;        // [T, num_q_heads, D], token stride q_stride
  const void* k_cache;  // page_stride / token_stride as in KvWriteParams
  const void* v_cache;
  void* out;            // [T, num_q_heads, D], token stride out_stride
  const int32_t* query_start;   // [S + 1]
  const int32_t* kv_len;        // [S]
  const int32_t* page_indptr;   // [S + 1]
  const int32_t* page_indices;
  const int32_t* token_seq;     // [T] sequence of each token (filled by the backend)
  int num_tokens, num_seqs, num_q_heads, num_kv_heads, head_dim, page_size;
  int64_t q_stride, out_stride, page_stride, token_stride;
  int window;
  float scale;
  // split-K: each (token, kv head) range is cut into chunks of split_size keys;
  // num_splits > 1 needs partial_out [T, Hq, num_splits, D] and partial_ml [T, Hq, num_splits, 2].
  int num_splits, split_size;
  float* partial_out;
  float* partial_ml;
  // Decode kernel only: [num_seqs * kv-head groups] zeros; the last split block
  // of a (sequence, group) merges the partials and resets its counter. nullptr:
  // the combine kernel merges them.
  int* split_counters;
  // Decode kernel only: with rope.positions set, q is read unrotated and rotated
  // in the kernel, and the block(s) whose split holds a sequence's new token
  // rotate its K and write the K and V rows into the cache first (what
  // launch_rope with these parameters does), so no RoPE kernel runs before.
  RopeKernelParams rope;
  // Decode kernel only: metadata and the first tile's K/V loads go out before
  // griddepcontrol.wait (CudaBackendOptions::attention_early_loads).
  bool early_loads;
  // Decode kernel only: GQA groups of 4, 7 or 8 query heads run a kernel built
  // for exactly that group (CudaBackendOptions::attention_exact_group).
  bool exact_group;
  // Decode kernel only: CudaBackendOptions::attention_lean_tail.
  bool lean_tail;
  ElemType type;
  int variant;  // 0: first validated kernel; 1: loads batched ahead of use
  // Tensor-core prefill (attention_prefill.cu): sequences with at least
  // prefill_min_query query tokens this step go there (0: none do), the others
  // to the CUDA-core kernel. prefill_tiles: attention_prefill_max_tiles(...) int2.
  int prefill_min_query;
  void* prefill_tiles;
  bool prefill_all;  // every sequence qualifies (known on the host): no CUDA-core launch
};
// Both kernels as needed (the prefill one when prefill_min_query > 0).
void launch_attention(const AttnKernelParams& p, cudaStream_t stream);
// The tensor-core kernel alone, for the sequences of >= prefill_min_query tokens.
void launch_attention_prefill(const AttnKernelParams& p, cudaStream_t stream);
// Upper bound on its 64-row query tiles (0 when no sequence can qualify).
int attention_prefill_max_tiles(int num_tokens, int num_seqs, int min_query);

// ---- sampling (sample.cu; semantics of src/sampling/sampler.cpp) -----------

constexpr float kSampleGreedyEpsilon = 1e-5f;  // = sampling's kGreedyEpsilon
constexpr int kSampleSeen = 1;    // in the prompt or output: repetition penalty
constexpr int kSampleBanned = 2;  // forced to -inf

struct SamplePenalty {
  int32_t id;
  int32_t output_count;  // occurrences in the output (presence/frequency)
  int32_t flags;         // kSampleSeen | kSampleBanned
};

struct SampleKernelRow {
  uint64_t seed;
  int32_t logits_row;
  int32_t top_k;
  float temperature, top_p, min_p;
  float repetition_penalty, presence_penalty, frequency_penalty;
  int32_t choice_index, output_index;
  int32_t penalty_begin, penalty_end;  // into SampleKernelParams::penalties (distinct ids)
};

struct SampleKernelParams {
  const float* logits;  // [*, vocab], row stride logits_stride
  int64_t logits_stride;
  void* scratch;        // num_rows x scratch_row_bytes
  int64_t scratch_row_bytes;  // sample_scratch_row_bytes(vocab)
  const SampleKernelRow* rows;  // [num_rows]
  const SamplePenalty* penalties;
  int32_t* out_ids;     // [num_rows]
  int num_rows, vocab;
};
// Per row: vocab doubles (weights) then vocab floats (penalized logits), 16-byte aligned.
inline int64_t sample_scratch_row_bytes(int vocab) { return (int64_t{vocab} * 12 + 15) / 16 * 16; }
// One block per row: its token id into out_ids.
void launch_sample(const SampleKernelParams& p, cudaStream_t stream);

// Splits of one (token, head) the combine kernel merges: at most this many.
constexpr int kMaxAttentionSplits = 64;
// Merges the num_splits partials of every (token, head) into out.
void launch_attention_combine(const AttnKernelParams& p, cudaStream_t stream);

// Decode batches (every sequence has at most one query token; attention_decode.cu):
// grid (num_seqs, kv-head groups, num_splits), each block cutting its sequence's
// keys into num_splits equal ranges on the device; split_size and token_seq are
// unused. The split count follows the batch's shape only, or also max_kv_len when
// it is known (> 0), so a graph captured with max_kv_len = 0 fits every step.
constexpr int kMaxDecodeSplits = 32;
int attention_decode_splits(int num_seqs, int num_q_heads, int num_kv_heads, int max_kv_len, int num_sms,
                            int max_splits = kMaxDecodeSplits);
void launch_attention_decode(const AttnKernelParams& p, cudaStream_t stream);

// token_seq[i] = the sequence of token i, from query_start (T tokens, S seqs).
void launch_token_seq(const int32_t* query_start, int num_seqs, int32_t* token_seq,
                      int num_tokens, cudaStream_t stream);

}  // namespace tandem::cuda

namespace tandem::cuda {

// dst[m, k] = src[m, perm[k]] (dst rows are contiguous, K elements).
void launch_gather_cols(const void* src, void* dst, const int32_t* perm, int M, int K,
                        int64_t src_stride, ElemType type, cudaStream_t stream);
// y[m, n] += bias[n]
void launch_add_bias(void* y, ElemType y_type, const void* bias, ElemType bias_type, int M, int N,
                     int64_t y_stride, cudaStream_t stream);

}  // namespace tandem::cuda
