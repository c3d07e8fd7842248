// CudaBackend: backend.h on one CUDA stream at a time (of two: low and high
// priority, see set_step_priority), all memory from one DeviceArena.
#include "backend/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_linear.h"
#include "backend/cuda/device_arena.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/int4_layout.h"
#include "backend/cuda/lt_gemm.h"
#include "backend/cuda/op_params.h"
#include "common/check.h"

namespace tandem::cuda {

namespace {
std::atomic<bool> g_pdl_enabled{true};
}  // namespace
void set_pdl_enabled(bool on) { g_pdl_enabled.store(on, std::memory_order_relaxed); }
bool pdl_enabled() { return g_pdl_enabled.load(std::memory_order_relaxed); }
namespace {

constexpr size_t kLtWorkspaceBytes = 32ull << 20;
// The decode attention's split counters (AttnKernelParams::split_counters), the
// last 64 KiB of that region: the plans count the region already.
constexpr size_t kSplitCounterBytes = 64ull << 10;

class CudaGraph : public Backend::Graph {
 public:
  ~CudaGraph() override {
    if (exec) cudaGraphExecDestroy(exec);
  }
  cudaGraphExec_t exec = nullptr;
  uint64_t scratch_epoch = 0;  // CudaBackend::scratch_epoch_ at capture
};

class CudaBackend : public Backend {
 public:
  CudaBackend() = default;
  ~CudaBackend() override {
    workspace_.reset();  // frees through this backend while the stream still exists
    retired_.clear();
    for (cudaStream_t s : {stream_low_, stream_high_}) {
      if (s == nullptr) continue;
      cudaStreamSynchronize(s);
      cudaStreamDestroy(s);
    }
    if (switch_event_) cudaEventDestroy(switch_event_);
    if (download_event_) cudaEventDestroy(download_event_);
    if (download_host_) cudaFreeHost(download_host_);
  }

  Status init(const CudaBackendOptions& o) {
    if (o.activation_dtype != DType::kF16 && o.activation_dtype != DType::kBF16)
      return invalid_argument("CUDA backend activations must be F16 or BF16");
    act_ = o.activation_dtype;
    if (o.kernel_variant < 0 || o.kernel_variant > 2)
      return invalid_argument("CUDA kernel_variant must be 0, 1 or 2, not " + std::to_string(o.kernel_variant));
    variant_ = o.kernel_variant;
    pdl_ = o.pdl;
    gemv_prefetch_ = o.gemv_prefetch;
    gemv_scale_ahead_ = o.gemv_scale_ahead;
    upload_sync_ = o.upload_sync;
    if (o.gemv_ring < 0 || o.gemv_ring > 4)
      return invalid_argument("CUDA gemv_ring must be 0 to 4 rounds, not " + std::to_string(o.gemv_ring));
    gemv_ring_ = o.gemv_ring;
    gemv_ring_max_bytes_ = o.gemv_ring_max_bytes;
    if (o.gemv_max_parts < 1 || o.gemv_max_parts > 8)
      return invalid_argument("CUDA gemv_max_parts must be 1 to 8 warps, not " + std::to_string(o.gemv_max_parts));
    gemv_max_parts_ = o.gemv_max_parts;
    fused_swiglu_ = o.fused_swiglu;
    fused_norms_ = o.fused_norms;
    fused_norms_max_width_ = o.fused_norms_max_width;
    fused_combine_ = o.attention_fused_combine;
    fused_rope_ = o.attention_fused_rope;
    int4_tc_gemm_ = o.int4_tc_gemm;
    if (o.decode_attention_max_splits < 1 || o.decode_attention_max_splits > kMaxDecodeSplits)
      return invalid_argument("CUDA decode_attention_max_splits must be 1 to " + std::to_string(kMaxDecodeSplits) +
                              ", not " + std::to_string(o.decode_attention_max_splits));
    max_decode_splits_ = o.decode_attention_max_splits;
    early_attention_loads_ = o.attention_early_loads;
    exact_group_attention_ = o.attention_exact_group;
    lean_attention_tail_ = o.attention_lean_tail;
    set_pdl_enabled(pdl_);
    graphs_ = o.graphs;
    if (o.attention_prefill_min_query < 0)
      return invalid_argument("CUDA attention_prefill_min_query must be >= 0, not " +
                              std::to_string(o.attention_prefill_min_query));
    prefill_min_query_ = o.attention_prefill_min_query;
    if (cudaSetDevice(o.device) != cudaSuccess) {
      cudaGetLastError();
      return invalid_argument("no CUDA device " + std::to_string(o.device));
    }
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, o.device));
    num_sms_ = prop.multiProcessorCount;
    clusters_ = prop.major >= 9;
    device_ = o.device;
    // Starts low: the least priority is the one every plain stream has (0), so
    // a backend that never gets the hint runs as it did with one stream.
    int least = 0, greatest = 0;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    CUDA_CHECK(cudaStreamCreateWithPriority(&stream_low_, cudaStreamNonBlocking, least));
    CUDA_CHECK(cudaStreamCreateWithPriority(&stream_high_, cudaStreamNonBlocking, greatest));
    CUDA_CHECK(cudaEventCreateWithFlags(&switch_event_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&download_event_, cudaEventDisableTiming));
    stream_ = stream_low_;
    // Kernel attributes (opt-in shared memory): a refusal is this device's or
    // driver's limit, reported rather than aborting the process.
    for (const auto& [what, configure] :
         {std::pair{"int4 GEMV", &int4_gemv_configure}, std::pair{"int4 GEMM", &int4_gemm_configure}}) {
      if (const cudaError_t e = configure(); e != cudaSuccess) {
        cudaGetLastError();
        return internal_error(std::string("CUDA ") + what + " kernel setup (shared memory opt-in) failed on device " +
                              std::to_string(o.device) + ": " + cudaGetErrorString(e));
      }
    }
    const char* err = nullptr;
    if (!arena_.init(o.memory_bytes, &err)) {
      return Status(StatusCode::kResourceExhausted,
                    "cannot allocate " + std::to_string(o.memory_bytes) + " bytes on " +
                        prop.name + ": " + err);
    }
    void* ws = arena_.allocate(kLtWorkspaceBytes);
    if (ws == nullptr) return Status(StatusCode::kResourceExhausted, "CUDA memory too small for the cuBLASLt workspace");
    if (!lt_.init(ws, kLtWorkspaceBytes - kSplitCounterBytes, &err)) return Status(StatusCode::kInternal, err);
    split_counters_ = reinterpret_cast<int*>(static_cast<char*>(ws) + kLtWorkspaceBytes - kSplitCounterBytes);
    CUDA_CHECK(cudaMemset(split_counters_, 0, kSplitCounterBytes));  // each merging block resets its own
    return ok_status();
  }

  std::string name() const override { return "cuda"; }
  DType activation_dtype() const override { return act_; }

  StatusOr<DeviceBuffer> allocate(size_t bytes) override {
    void* p = arena_.allocate(std::max<size_t>(bytes, 1));
    if (p == nullptr) {
      return Status(StatusCode::kResourceExhausted,
                    "CUDA arena: " + std::to_string(bytes) + " bytes requested, " +
                        std::to_string(arena_.capacity() - arena_.used()) + " of " +
                        std::to_string(arena_.capacity()) + " free (fragments may be smaller)");
    }
    return DeviceBuffer(this, p, bytes);
  }
  void free_memory(void* data, size_t) override {
    // Kernels already queued may still read it; the arena may hand it out at once.
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    arena_.release(data);
  }
  void copy_host_to_device(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    // The host buffer may go away on return: a copy from pageable memory is
    // staged before cudaMemcpyAsync returns. The copy is in stream order, so
    // it also starts only after every kernel before it has ended (programmatic
    // dependent launch overlaps kernels with kernels only), which the decode
    // attention's early loads rely on (attention_early_loads).
    if (upload_sync_) CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void copy_device_to_host(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void copy_device_to_device(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  }
  void fill_zero(void* dst, size_t bytes) override {
    CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_));
  }
  void synchronize() override { CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  void download_async(const void* src, size_t bytes) override {
    if (bytes > download_capacity_) {
      // The old buffer may still be a copy's destination.
      CUDA_CHECK(cudaEventSynchronize(download_event_));
      if (download_host_) CUDA_CHECK(cudaFreeHost(download_host_));
      download_host_ = nullptr;
      download_capacity_ = std::max<size_t>(bytes, 4096);
      CUDA_CHECK(cudaMallocHost(&download_host_, download_capacity_));
    }
    CUDA_CHECK(cudaMemcpyAsync(download_host_, src, bytes, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaEventRecord(download_event_, stream_));
  }
  const void* download_wait() override {
    CUDA_CHECK(cudaEventSynchronize(download_event_));
    return download_host_;
  }

  // ---- step priority ----
  // The new stream waits for all work issued on the old one, which gets none
  // after it: stream order, and synchronizing stream_ alone, still cover
  // everything. A capture must end on the stream it began on: no switch then.
  void set_step_priority(bool high) override {
    cudaStream_t next = high ? stream_high_ : stream_low_;
    if (next == stream_ || capturing_) return;
    CUDA_CHECK(cudaEventRecord(switch_event_, stream_));
    CUDA_CHECK(cudaStreamWaitEvent(next, switch_event_, 0));
    stream_ = next;
  }

  // ---- graphs ----
  bool supports_graphs() const override { return graphs_; }
  bool prefers_fused_linears() const override { return true; }
  Status check_head_dim(int head_dim) const override {
    if (is_attention_head_dim(head_dim)) return ok_status();
    return Status(StatusCode::kUnimplemented,
                  "head_dim " + std::to_string(head_dim) + " is not supported by the CUDA attention (32, 64 or 128)");
  }

  Status begin_capture() override {
    if (capturing_) return failed_precondition("CUDA graph capture already in progress");
    // Relaxed: other threads (other engines) may call the runtime meanwhile.
    const cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return internal_error(std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e));
    }
    capturing_ = true;
    capture_epoch_ = scratch_epoch_;
    return ok_status();
  }

  StatusOr<std::unique_ptr<Graph>> end_capture() override {
    if (!capturing_) return failed_precondition("no CUDA graph capture in progress");
    cudaGraph_t graph = nullptr;
    cudaError_t e = cudaStreamEndCapture(stream_, &graph);
    capturing_ = false;
    retired_.clear();  // scratch replaced during the capture: nothing ran on it
    if (e != cudaSuccess) {
      cudaGetLastError();
      return internal_error(std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e));
    }
    if (scratch_epoch_ != capture_epoch_) {
      cudaGraphDestroy(graph);
      return failed_precondition("CUDA scratch memory grew during the capture");
    }
    auto g = std::make_unique<CudaGraph>();
    e = cudaGraphInstantiate(&g->exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) {
      cudaGetLastError();
      g->exec = nullptr;
      return internal_error(std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e));
    }
    g->scratch_epoch = scratch_epoch_;
    return std::unique_ptr<Graph>(std::move(g));
  }

  bool replay(const Graph& graph) override {
    const auto& g = static_cast<const CudaGraph&>(graph);
    if (g.scratch_epoch != scratch_epoch_ || g.exec == nullptr) return false;
    CUDA_CHECK(cudaGraphLaunch(g.exec, stream_));
    return true;
  }

  StatusOr<std::unique_ptr<PreparedLinear>> prepare_linear(const LinearWeight& w) override {
    return prepare_cuda_linear(*this, w, act_);
  }

  void fill_random_uniform(const TensorView& t, float lo, float hi, uint64_t seed) override {
    launch_random_fill({t.data, t.numel(), RandomFillMode::kUniform, elem(t.dtype), lo, hi, 0.f, 0, 0, seed}, stream_);
    CUDA_CHECK_LAUNCH();
  }

  StatusOr<std::unique_ptr<PreparedLinear>> prepare_random_linear(const LinearWeight& w, uint64_t seed) override {
    return prepare_random_cuda_linear(*this, w, act_, seed, stream_);
  }

  void embedding(const TensorView& table, const TensorView& ids, const TensorView& out) override {
    CHECK(ids.dtype == DType::kI32 && table.ndim == 2 && out.ndim == 2);
    CHECK_EQ(out.shape[0], ids.numel());
    CHECK_EQ(out.shape[1], table.shape[1]);
    if (table.dtype == out.dtype) {
      launch_embedding({ids.as<const int32_t>(), table.data, out.data, static_cast<int>(ids.numel()),
                        static_cast<int>(table.shape[1]), static_cast<int>(table.shape[0]), elem(out.dtype)},
                       stream_);
      CUDA_CHECK_LAUNCH();
      return;
    }
    // Different types: gather into scratch in the table's type, then convert.
    const int64_t n = out.numel();
    char* tmp = workspace(n * dtype_size(table.dtype));
    launch_embedding({ids.as<const int32_t>(), table.data, tmp, static_cast<int>(ids.numel()),
                      static_cast<int>(table.shape[1]), static_cast<int>(table.shape[0]), elem(table.dtype)},
                     stream_);
    launch_convert(tmp, elem(table.dtype), out.data, elem(out.dtype), n, stream_);
    CUDA_CHECK_LAUNCH();
  }

  void rms_norm(const TensorView& x, const TensorView& weight, float eps, const TensorView& out) override {
    norm(x, nullptr, weight, eps, out);
  }
  void add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight, float eps,
                    const TensorView& out) override {
    CHECK(residual.dtype == x.dtype && residual.numel() == x.numel());
    norm(x, residual.data, weight, eps, out);
  }

  void linear(const TensorView& x, const PreparedLinear& pw, const TensorView& out) override {
    const auto& w = static_cast<const CudaLinear&>(pw);
    CHECK_MSG(x.dtype == act_, "linear input is " << dtype_name(x.dtype));
    CHECK_EQ(x.row_numel(), w.K);
    CHECK_EQ(out.row_numel(), w.N);
    const int M = static_cast<int>(x.shape[0]);
    CHECK_EQ(out.shape[0], M);
    if (M == 0) return;
    const ElemType et = elem(act_), yt = elem(out.dtype);
    if (!w.int4) {
      gemm(w.weight.data(), x.data, out.data, M, w.N, w.K, yt);
      if (w.bias.data()) launch_add_bias(out.data, yt, w.bias.data(), et, M, static_cast<int>(w.N), w.N, stream_);
      CUDA_CHECK_LAUNCH();
      return;
    }
    int4_linear(x, w, out, Int4GemvFusion{});
  }

  bool linear_fuses(const TensorView& x, const PreparedLinear& pw, const LinearFusion& f) const override {
    const auto& w = static_cast<const CudaLinear&>(pw);
    if (!w.int4 || x.dtype != act_ || x.ndim < 1 || x.row_numel() != w.K) return false;
    if (!f.norm_weight.empty() && (f.norm_weight.dtype != DType::kF32 || f.norm_weight.numel() != w.K)) return false;
    if (!f.residual.empty() && (f.residual.dtype != act_ || f.residual.row_numel() != w.N)) return false;
    if (f.swiglu && !fused_swiglu_) return false;
    if (!fused_norms_ || (!f.norm_weight.empty() && w.K > fused_norms_max_width_)) return false;
    Int4GemvParams p{};
    p.w.perm = static_cast<const int32_t*>(w.perm.data());
    p.w.K = static_cast<int>(w.K);
    p.w.N = static_cast<int>(w.N);
    p.w.group_size = w.group_size;
    p.M = static_cast<int>(x.shape[0]);
    p.num_sms = num_sms_;
    p.variant = variant_;
    p.type = p.y_type = elem(act_);
    p.fuse.residual = f.residual.data;
    p.fuse.swiglu = f.swiglu;
    return p.M >= 1 && int4_gemv_fuses(p);
  }

  void linear_fused(const TensorView& x, const PreparedLinear& pw, const TensorView& out,
                    const LinearFusion& f) override {
    CHECK(linear_fuses(x, pw, f) && out.dtype == act_);
    const auto& w = static_cast<const CudaLinear&>(pw);
    CHECK_EQ(out.row_numel(), f.swiglu ? w.N / 2 : w.N);
    CHECK_EQ(out.shape[0], x.shape[0]);
    if (!f.residual.empty()) CHECK_EQ(f.residual.shape[0], x.shape[0]);
    Int4GemvFusion fuse;
    fuse.norm_weight = f.norm_weight.empty() ? nullptr : f.norm_weight.as<const float>();
    fuse.eps = f.eps;
    fuse.residual = f.residual.empty() ? nullptr : f.residual.data;
    fuse.swiglu = f.swiglu;
    int4_linear(x, w, out, fuse);
  }

  // The int4 paths of linear(); `fuse` only where int4_gemv_fuses (linear_fused).
  void int4_linear(const TensorView& x, const CudaLinear& w, const TensorView& out, const Int4GemvFusion& fuse) {
    const int M = static_cast<int>(x.shape[0]);
    const ElemType et = elem(act_), yt = elem(out.dtype);
    const int K = static_cast<int>(w.K), N = static_cast<int>(w.N);
    const size_t xperm_bytes = w.perm.data() ? static_cast<size_t>(M) * K * 2 : 0;
    // Decode batches above the GEMV's 16 rows: the tensor-core GEMM (its split-K
    // partials are at most N * K * 2 bytes, the dequantized layer's size).
    const bool tc = M > 16 && int4_tc_gemm_ && int4_gemm_supports(M, K, N, w.group_size);
    const size_t rest_bytes = M <= 16 ? int4_gemv_workspace_floats(K, N, num_sms_) * 4
                              : tc    ? int4_gemm_workspace_floats(M, K, N, num_sms_) * 4
                                      : static_cast<size_t>(N) * K * 2;
    char* ws = workspace(align(xperm_bytes) + rest_bytes);
    const void* xin = x.data;
    if (w.perm.data()) {
      launch_gather_cols(x.data, ws, static_cast<const int32_t*>(w.perm.data()), M, K, K, et, stream_);
      xin = ws;
    }
    char* rest = ws + align(xperm_bytes);
    Int4Weight iw{static_cast<const uint32_t*>(w.qweight.data()), w.scale_zero.data(),
                  static_cast<const int32_t*>(w.perm.data()), w.bias.data(), K, N, w.group_size};
    if (M <= 16) {
      const int64_t y_stride = fuse.swiglu ? N / 2 : N;  // out is [M, N/2] with SwiGLU fused
      Int4GemvParams p{iw, xin, out.data, M, K, y_stride, reinterpret_cast<float*>(rest), num_sms_, 0, variant_, et, yt};
      p.pdl = pdl_;
      p.prefetch = gemv_prefetch_;
      p.scale_ahead = gemv_scale_ahead_;
      p.ring = gemv_ring_max_bytes_ == 0 || w.qweight.bytes() <= gemv_ring_max_bytes_ ? gemv_ring_ : 0;
      p.max_parts = gemv_max_parts_;
      p.fuse = fuse;
      launch_int4_gemv(p, stream_);
    } else if (tc) {
      Int4GemmParams p{iw, xin, out.data, M, K, N, reinterpret_cast<float*>(rest), num_sms_, 0, et, yt};
      launch_int4_gemm(p, stream_);
    } else {
      launch_int4_dequant(iw, rest, et, stream_);
      gemm(rest, xin, out.data, M, N, K, yt);
      if (w.bias.data()) launch_add_bias(out.data, yt, w.bias.data(), et, M, N, N, stream_);
    }
    CUDA_CHECK_LAUNCH();
  }

  void rope(const RopeParams& p) override {
    launch_rope(rope_kernel_params(p, act_), stream_);
    CUDA_CHECK_LAUNCH();
  }

  void rope_write_kv(const RopeParams& p, const TensorView& v, const TensorView& slot_mapping,
                     const KvCacheView& cache) override {
    launch_rope(rope_kv_kernel_params(p, v, slot_mapping, cache, act_), stream_);
    CUDA_CHECK_LAUNCH();
  }

  void rope_kv_attention(const RopeParams& r, const TensorView& v, const TensorView& slot_mapping,
                         const AttentionParams& a) override {
    if (!fused_rope_ || !decode_attention(a) || r.q.data != a.q.data) {
      Backend::rope_kv_attention(r, v, slot_mapping, a);
      return;
    }
    check_attention(a);
    const RopeKernelParams rk = rope_kv_kernel_params(r, v, slot_mapping, a.cache, act_);
    attention_decode(a, &rk);
  }

  void write_kv(const TensorView& k, const TensorView& v, const TensorView& slot_mapping,
                const KvCacheView& cache) override {
    CHECK(k.dtype == cache.k.dtype && v.dtype == cache.v.dtype && slot_mapping.dtype == DType::kI32);
    const int T = static_cast<int>(k.shape[0]), KH = static_cast<int>(k.shape[1]),
              D = static_cast<int>(k.shape[2]);
    CHECK_EQ(cache.k.shape[2], KH);
    CHECK_EQ(cache.k.shape[3], D);
    const int page_size = static_cast<int>(cache.k.shape[1]);
    KvWriteParams p{k.data, v.data, cache.k.data, cache.v.data, slot_mapping.as<const int32_t>(), T, KH, D,
                    page_size, static_cast<int64_t>(KH) * D, static_cast<int64_t>(KH) * D,
                    static_cast<int64_t>(page_size) * KH * D, static_cast<int64_t>(KH) * D,
                    elem(k.dtype)};
    launch_kv_write(p, stream_);
    CUDA_CHECK_LAUNCH();
  }

  void check_attention(const AttentionParams& a) const {
    CHECK(a.q.dtype == act_ && a.out.dtype == act_ && a.cache.k.dtype == act_);
    CHECK_MSG(is_attention_head_dim(a.head_dim), "CUDA attention takes head_dim 32, 64 or 128, not " << a.head_dim);
    CHECK(a.num_kv_heads > 0 && a.num_heads % a.num_kv_heads == 0);
    CHECK_EQ(static_cast<int>(a.cache.k.shape[1]), a.pages.page_size);
  }

  // Decode batches (every sequence at most one query token) take attention_decode.cu.
  bool decode_attention(const AttentionParams& a) const {
    return a.pages.num_tokens > 0 && a.pages.max_query_len == 1 && variant_ == 2;
  }

  void attention(const AttentionParams& a) override {
    check_attention(a);
    const int T = a.pages.num_tokens, S = a.pages.num_seqs;
    if (T == 0) return;
    if (decode_attention(a)) {
      attention_decode(a, nullptr);
      return;
    }
    // Split long contexts when the batch alone would not fill the GPU (FlashDecoding).
    const int ratio = a.num_heads / a.num_kv_heads;
    int group = 8;
    while (ratio % group) --group;
    const int base_blocks = T * a.num_kv_heads * (ratio / group);
    int splits = 1;
    const int max_kv = a.pages.max_kv_len;
    if (max_kv > 0 && base_blocks < 2 * num_sms_) {
      splits = std::min({(2 * num_sms_ + base_blocks - 1) / base_blocks, (max_kv + 127) / 128, kMaxAttentionSplits});
      splits = std::max(splits, 1);
    }
    int split_size = 1 << 30;
    if (splits > 1) split_size = ((max_kv + splits - 1) / splits + 31) / 32 * 32;
    const size_t seq_bytes = align(static_cast<size_t>(T) * 4);
    const size_t out_bytes = splits > 1 ? align(static_cast<size_t>(T) * a.num_heads * splits * a.head_dim * 4) : 0;
    const size_t ml_bytes = splits > 1 ? align(static_cast<size_t>(T) * a.num_heads * splits * 2 * 4) : 0;
    // Tensor-core prefill tiles (attention_prefill.cu), only when a sequence can qualify.
    const int min_query = a.pages.max_query_len >= prefill_min_query_ ? prefill_min_query_ : 0;
    const size_t tile_bytes = align(static_cast<size_t>(attention_prefill_max_tiles(T, S, min_query)) * 8);
    char* ws = workspace(seq_bytes + out_bytes + ml_bytes + tile_bytes);
    int32_t* token_seq = reinterpret_cast<int32_t*>(ws);
    launch_token_seq(a.pages.query_start, S, token_seq, T, stream_);
    AttnKernelParams p = attention_kernel_params(a, splits, act_);
    p.token_seq = token_seq;
    p.split_size = split_size;
    p.partial_out = splits > 1 ? reinterpret_cast<float*>(ws + seq_bytes) : nullptr;
    p.partial_ml = splits > 1 ? reinterpret_cast<float*>(ws + seq_bytes + out_bytes) : nullptr;
    p.variant = variant_;
    p.prefill_min_query = tile_bytes > 0 ? min_query : 0;
    p.prefill_tiles = tile_bytes > 0 ? ws + seq_bytes + out_bytes + ml_bytes : nullptr;
    // The shortest query is at least T - (S - 1) * max_query_len.
    p.prefill_all = p.prefill_min_query > 0 && T - int64_t{S - 1} * a.pages.max_query_len >= p.prefill_min_query;
    launch_attention(p, stream_);
    CUDA_CHECK_LAUNCH();
  }

  // Decode batches: the launch shape follows the batch's shape (and max_kv_len
  // only when known), so it can be captured in a graph.
  // rope: the RoPE + KV write to fuse into the kernel, or nullptr.
  void attention_decode(const AttentionParams& a, const RopeKernelParams* rope) {
    const int T = a.pages.num_tokens, S = a.pages.num_seqs;
    const int splits =
        attention_decode_splits(S, a.num_heads, a.num_kv_heads, a.pages.max_kv_len, num_sms_, max_decode_splits_);
    const size_t out_bytes = splits > 1 ? align(static_cast<size_t>(T) * a.num_heads * splits * a.head_dim * 4) : 0;
    const size_t ml_bytes = splits > 1 ? align(static_cast<size_t>(T) * a.num_heads * splits * 2 * 4) : 0;
    char* ws = splits > 1 ? workspace(out_bytes + ml_bytes) : nullptr;
    AttnKernelParams p = attention_kernel_params(a, splits, act_);
    p.partial_out = splits > 1 ? reinterpret_cast<float*>(ws) : nullptr;
    p.partial_ml = splits > 1 ? reinterpret_cast<float*>(ws + out_bytes) : nullptr;
    // A counter per (sequence, head group); groups <= query heads.
    const bool counters_fit = static_cast<size_t>(S) * a.num_heads * sizeof(int) <= kSplitCounterBytes;
    p.split_counters = splits > 1 && fused_combine_ && counters_fit ? split_counters_ : nullptr;
    if (rope != nullptr) p.rope = *rope;
    p.early_loads = early_attention_loads_;
    p.exact_group = exact_group_attention_;
    p.lean_tail = lean_attention_tail_;
    launch_attention_decode(p, stream_);
    CUDA_CHECK_LAUNCH();
  }

  void silu_mul(const TensorView& gate, const TensorView& up, const TensorView& out) override {
    CHECK(gate.dtype == up.dtype && gate.dtype == out.dtype && gate.numel() == up.numel());
    const int rows = static_cast<int>(gate.shape[0]);
    const int64_t inter = gate.row_numel();
    launch_silu_mul({gate.data, up.data, out.data, rows, static_cast<int>(inter), inter, inter, inter,
                     elem(gate.dtype)},
                    stream_);
    CUDA_CHECK_LAUNCH();
  }

  void swiglu(const TensorView& gate_up, const TensorView& out) override {
    CHECK(gate_up.dtype == out.dtype);
    const int rows = static_cast<int>(out.shape[0]);
    const int64_t inter = out.row_numel();
    CHECK_EQ(gate_up.shape[0], rows);
    CHECK_EQ(gate_up.row_numel(), 2 * inter);
    const char* gu = static_cast<const char*>(gate_up.data);
    launch_silu_mul({gu, gu + inter * dtype_size(out.dtype), out.data, rows, static_cast<int>(inter), 2 * inter,
                     2 * inter, inter, elem(out.dtype)},
                    stream_);
    CUDA_CHECK_LAUNCH();
  }

  void split_columns(const TensorView& src, const std::vector<TensorView>& outs) override {
    CHECK(!outs.empty() && outs.size() <= 4);
    const int64_t es = static_cast<int64_t>(dtype_size(src.dtype));
    SplitColumnsParams p{};
    p.src = src.data;
    p.rows = static_cast<int>(src.shape[0]);
    p.src_stride_bytes = src.row_numel() * es;
    p.num_outs = static_cast<int>(outs.size());
    int64_t col = 0;
    for (int i = 0; i < p.num_outs; ++i) {
      CHECK(outs[i].dtype == src.dtype && outs[i].shape[0] == src.shape[0]);
      p.dst[i] = outs[i].data;
      p.col_bytes[i] = col;
      p.width_bytes[i] = outs[i].row_numel() * es;
      col += p.width_bytes[i];
    }
    CHECK_EQ(col, p.src_stride_bytes);
    launch_split_columns(p, stream_);
    CUDA_CHECK_LAUNCH();
  }

  void gather_rows(const TensorView& x, const TensorView& rows, const TensorView& out) override {
    CHECK(rows.dtype == DType::kI32 && x.dtype == out.dtype);
    const int64_t row_bytes = x.row_numel() * static_cast<int64_t>(dtype_size(x.dtype));
    launch_gather_rows({x.data, out.data, rows.as<const int32_t>(), static_cast<int>(rows.numel()),
                        row_bytes, row_bytes, row_bytes},
                       stream_);
    CUDA_CHECK_LAUNCH();
  }

  void convert(const TensorView& src, const TensorView& dst) override {
    CHECK_EQ(src.numel(), dst.numel());
    launch_convert(src.data, elem(src.dtype), dst.data, elem(dst.dtype), src.numel(), stream_);
    CUDA_CHECK_LAUNCH();
  }

  void sample(const SampleBatch& b) override {
    CHECK(b.logits.dtype == DType::kF32 && b.logits.ndim == 2);
    CHECK(b.out_ids.dtype == DType::kI32 && b.out_ids.numel() == static_cast<int64_t>(b.rows.size()));
    const int R = static_cast<int>(b.rows.size());
    if (R == 0) return;
    const int64_t V = b.logits.dim(1);
    std::vector<SampleKernelRow> rows(R);
    for (int i = 0; i < R; ++i) {
      const SampleRow& r = b.rows[i];
      CHECK(r.logits_row >= 0 && r.logits_row < b.logits.dim(0));
      CHECK(r.penalty_begin >= 0 && r.penalty_begin <= r.penalty_end &&
            r.penalty_end <= static_cast<int>(b.penalties.size()));
      rows[i] = {r.seed, r.logits_row, r.top_k, r.temperature, r.top_p, r.min_p, r.repetition_penalty,
                 r.presence_penalty, r.frequency_penalty, r.choice_index, r.output_index, r.penalty_begin,
                 r.penalty_end};
    }
    std::vector<SamplePenalty> pen(b.penalties.size());
    for (size_t i = 0; i < pen.size(); ++i) {
      const SamplePenaltyToken& t = b.penalties[i];
      pen[i] = {t.id, t.output_count, (t.seen ? kSampleSeen : 0) | (t.banned ? kSampleBanned : 0)};
    }
    // Workspace: [rows][penalties][scratch of up to kSampleRowsPerLaunch rows,
    // 12 bytes per vocabulary entry each]; launches of that many rows reuse it.
    constexpr int kSampleRowsPerLaunch = 64;
    const int64_t row_bytes = sample_scratch_row_bytes(static_cast<int>(V));
    const size_t rows_bytes = align(rows.size() * sizeof(SampleKernelRow));
    const size_t pen_bytes = align(std::max<size_t>(pen.size(), 1) * sizeof(SamplePenalty));
    char* ws = workspace(rows_bytes + pen_bytes + static_cast<size_t>(std::min(R, kSampleRowsPerLaunch)) * row_bytes);
    CUDA_CHECK(cudaMemcpyAsync(ws, rows.data(), rows.size() * sizeof(SampleKernelRow), cudaMemcpyHostToDevice, stream_));
    if (!pen.empty())
      CUDA_CHECK(cudaMemcpyAsync(ws + rows_bytes, pen.data(), pen.size() * sizeof(SamplePenalty), cudaMemcpyHostToDevice, stream_));
    for (int r0 = 0; r0 < R; r0 += kSampleRowsPerLaunch) {
      SampleKernelParams p{b.logits.as<const float>(), V, ws + rows_bytes + pen_bytes, row_bytes,
                           reinterpret_cast<const SampleKernelRow*>(ws) + r0,
                           reinterpret_cast<const SamplePenalty*>(ws + rows_bytes), b.out_ids.as<int32_t>() + r0,
                           std::min(kSampleRowsPerLaunch, R - r0), static_cast<int>(V)};
      launch_sample(p, stream_);
      CUDA_CHECK_LAUNCH();
    }
    // (Copies from pageable host memory are staged before cudaMemcpyAsync returns:
    // the host vectors may go.)
  }

  void copy_kv_pages(const KvCacheView& cache,
                     const std::vector<std::pair<int32_t, int32_t>>& src_dst) override {
    if (src_dst.empty()) return;
    const int n = static_cast<int>(src_dst.size());
    // Host image: [2 base pointers][n src][n dst], uploaded into the workspace.
    std::vector<char> host(16 + 8 * static_cast<size_t>(n));
    void* bases[2] = {cache.k.data, cache.v.data};
    std::memcpy(host.data(), bases, 16);
    int32_t* ids = reinterpret_cast<int32_t*>(host.data() + 16);
    for (int i = 0; i < n; ++i) {
      ids[i] = src_dst[i].first;
      ids[n + i] = src_dst[i].second;
    }
    char* ws = workspace(host.size());
    CUDA_CHECK(cudaMemcpyAsync(ws, host.data(), host.size(), cudaMemcpyHostToDevice, stream_));
    const int64_t page_bytes = cache.k.row_numel() * static_cast<int64_t>(dtype_size(cache.k.dtype));
    launch_copy_blocks({reinterpret_cast<void* const*>(ws), 2, reinterpret_cast<const int32_t*>(ws + 16),
                        reinterpret_cast<const int32_t*>(ws + 16) + n, n, page_bytes},
                       stream_);
    CUDA_CHECK_LAUNCH();
    // The pageable host image must outlive the copy's staging; the copy above
    // returns only after staging, so `host` may go.
  }

 private:
  static size_t align(size_t b) { return (b + 255) / 256 * 256; }

  // Scratch space for one op (ops run in stream order, so one region serves all).
  // Growing it moves it: graphs captured before then are out of date (epoch).
  char* workspace(size_t bytes) {
    if (bytes <= workspace_.bytes()) return static_cast<char*>(workspace_.data());
    ++scratch_epoch_;
    if (capturing_) {
      // No synchronization while capturing: keep the old range until the capture
      // ends (end_capture then fails, as the graph would use the new range).
      retired_.push_back(std::move(workspace_));
    }
    workspace_.reset();  // synchronizes before the range goes back to the arena
    auto buf = allocate(std::max(bytes, size_t{4} << 20));
    if (!buf.ok()) {
      if (capturing_) {  // leave the stream usable: drop the half-made graph
        cudaGraph_t g = nullptr;
        if (cudaStreamEndCapture(stream_, &g) == cudaSuccess && g != nullptr) cudaGraphDestroy(g);
        cudaGetLastError();
        capturing_ = false;
        retired_.clear();
      }
      throw BackendOutOfMemory("CUDA workspace of " + std::to_string(bytes) + " bytes: " + buf.status().message());
    }
    workspace_ = std::move(buf).value();
    return static_cast<char*>(workspace_.data());
  }

  void norm(const TensorView& x, void* residual, const TensorView& weight, float eps, const TensorView& out) {
    CHECK(x.dtype == out.dtype && x.numel() == out.numel());
    const int64_t hidden = weight.numel();
    CHECK_EQ(x.row_numel(), hidden);
    RmsNormParams p{x.data, residual, weight.data, out.data, static_cast<int>(x.shape[0]),
                    static_cast<int>(hidden), hidden, hidden, eps, elem(x.dtype), elem(weight.dtype), clusters_};
    launch_rms_norm(p, stream_);
    CUDA_CHECK_LAUNCH();
  }

  void gemm(const void* w, const void* x, void* y, int M, int64_t N, int64_t K, ElemType yt) {
    LtGemmArgs g{w, x, y, M, static_cast<int>(N), static_cast<int>(K), K, N, elem(act_), elem(act_), yt};
    const int st = lt_.run(g, stream_);
    CHECK_MSG(st == 0, "cuBLASLt matmul M=" << M << " N=" << N << " K=" << K << " failed: status " << st);
  }

  int device_ = 0;
  int num_sms_ = 132;
  int variant_ = 0;  // CudaBackendOptions::kernel_variant
  bool pdl_ = true;  // CudaBackendOptions::pdl
  bool gemv_prefetch_ = false;  // CudaBackendOptions::gemv_prefetch
  bool gemv_scale_ahead_ = true;  // CudaBackendOptions::gemv_scale_ahead
  bool upload_sync_ = false;      // CudaBackendOptions::upload_sync
  int gemv_ring_ = 0;           // CudaBackendOptions::gemv_ring
  size_t gemv_ring_max_bytes_ = 0;  // CudaBackendOptions::gemv_ring_max_bytes
  int gemv_max_parts_ = 8;          // CudaBackendOptions::gemv_max_parts
  bool fused_swiglu_ = true;   // CudaBackendOptions::fused_swiglu
  bool fused_norms_ = true;    // CudaBackendOptions::fused_norms
  int fused_norms_max_width_ = 4096;  // CudaBackendOptions::fused_norms_max_width
  bool fused_combine_ = true;  // CudaBackendOptions::attention_fused_combine
  bool fused_rope_ = true;     // CudaBackendOptions::attention_fused_rope
  bool early_attention_loads_ = true;  // CudaBackendOptions::attention_early_loads
  bool exact_group_attention_ = true;  // CudaBackendOptions::attention_exact_group
  bool lean_attention_tail_ = true;    // CudaBackendOptions::attention_lean_tail
  bool int4_tc_gemm_ = true;   // CudaBackendOptions::int4_tc_gemm
  int max_decode_splits_ = kMaxDecodeSplits;  // CudaBackendOptions::decode_attention_max_splits
  int* split_counters_ = nullptr;
  bool graphs_ = true;  // CudaBackendOptions::graphs
  bool clusters_ = false;  // thread-block clusters (sm_90+)
  bool capturing_ = false;
  uint64_t scratch_epoch_ = 0;  // bumped whenever workspace_ moves
  uint64_t capture_epoch_ = 0;
  int prefill_min_query_ = 16;  // CudaBackendOptions::attention_prefill_min_query
  DType act_ = DType::kF16;
  cudaStream_t stream_ = nullptr;  // stream_low_ or stream_high_: every launch, copy and graph goes here
  cudaStream_t stream_low_ = nullptr;   // least priority (the CUDA default)
  cudaStream_t stream_high_ = nullptr;  // greatest priority
  cudaEvent_t switch_event_ = nullptr;  // orders stream_ switches
  cudaEvent_t download_event_ = nullptr;  // download_async's copy done
  void* download_host_ = nullptr;          // its page-locked destination
  size_t download_capacity_ = 0;
  DeviceArena arena_;  // destroyed after the buffers below (declared first)
  LtGemm lt_;
  DeviceBuffer workspace_;
  std::vector<DeviceBuffer> retired_;  // scratch replaced during a capture
};

}  // namespace

StatusOr<std::unique_ptr<Backend>> create_cuda_backend(const CudaBackendOptions& options) {
  auto b = std::make_unique<CudaBackend>();
  RETURN_IF_ERROR(b->init(options));
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace tandem::cuda
