// backend.h: the one door to compute. Model code (src/model/) calls only this
// interface; each backend (cpu/, cuda/) implements it. No device types here.
//
// Conventions
// - A TensorView is a non-owning, row-major, contiguous view. Its `data` is a
//   pointer in the backend's memory (host memory for the CPU backend, device
//   memory for CUDA) unless a method says "host".
// - Activations are in `activation_dtype()` (CPU: F32; CUDA: F16 or BF16).
//   Every op accumulates in fp32.
// - Ops are asynchronous on the backend's stream; `synchronize()` waits. Ops
//   CHECK their shapes (a mismatch is a programming error, not user input).
// - Integer metadata (ids, positions, slots, page tables) is int32 in backend
//   memory, uploaded by the caller once per forward.
//
// KV cache layout (one KvCacheView per layer; the same for every backend):
//   k: [num_pages, page_size, num_kv_heads, head_dim]  in activation_dtype()
//   v: [num_pages, page_size, num_kv_heads, head_dim]
// Token t of a sequence lives in page page_indices[page_indptr[s] + t / page_size]
// at row t % page_size; a "slot" is page_id * page_size + row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "backend/dtype.h"
#include "common/status.h"

namespace tandem {

constexpr int kMaxTensorDims = 4;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t shape[kMaxTensorDims] = {0, 0, 0, 0};
  int ndim = 0;

  TensorView() = default;
  TensorView(void* d, DType t, std::initializer_list<int64_t> dims);

  bool empty() const { return data == nullptr; }
  int64_t dim(int i) const { return shape[i]; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  // Elements per leading index: numel() / shape[0].
  int64_t row_numel() const;
  // The view of rows [begin, end) of the first dimension.
  TensorView rows(int64_t begin, int64_t end) const;
  // Same data, new shape (numel must match).
  TensorView reshape(std::initializer_list<int64_t> dims) const;
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
  std::string shape_string() const;  // "[2, 64]"
};

class Backend;

// Thrown by an op whose scratch memory cannot grow inside the backend's fixed
// arena (ops return void). The model runner turns it into kResourceExhausted
// for that step, so the engine fails the step's requests and the process (and
// every other model) stays up.
class BackendOutOfMemory : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Owns backend memory; freed through its backend on destruction. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* backend, void* data, size_t bytes)
      : backend_(backend), data_(data), bytes_(bytes) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void reset();
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  Backend* backend_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// A buffer plus its shape: what the model holds for norms, embeddings, workspace.
struct DeviceTensor {
  DeviceBuffer buffer;
  TensorView view;
};

// A linear layer y[M, N] = x[M, K] · W^T + b, as read from a checkpoint
// (host views into the mapped file). Int4 formats stay packed (FORMATS.md):
//   kDense:   weight  [N, K]      F32 / F16 / BF16 (HF layout)
//   kAwqGemm: qweight [K, N/8]    I32, packed along N, nibble order REV
//             qzeros  [K/G, N/8]  I32, same packing
//             scales  [K/G, N]    F16 (or BF16/F32)
//   kGptq:    qweight [K/8, N]    I32, packed along K (row r nibble j = k 8r+j)
//             qzeros  [ceil(K/G), N/8] I32, packed along N, sequential
//             scales  [ceil(K/G), N]
//             g_idx   [K]         I32 group of each input row (empty: k / G)
//             zero_offset 1 for checkpoint_format "gptq" (stores zero - 1), 0 for v2
//   bias      [N] (empty when the layer has none)
enum class WeightFormat { kDense, kAwqGemm, kGptq };
const char* weight_format_name(WeightFormat f);

struct LinearWeight {
  WeightFormat format = WeightFormat::kDense;
  int64_t num_out = 0;  // N
  int64_t num_in = 0;   // K
  int group_size = 0;   // G (int4 only); == K for one group per column
  int zero_offset = 0;  // added to the stored zero (GPTQ v1: 1)
  TensorView weight;    // kDense
  TensorView qweight, qzeros, scales, g_idx;  // int4
  TensorView bias;
  std::string name;     // e.g. "model.layers.0.self_attn.q_proj", for messages
};

// A linear layer in the backend's own layout (it may repack or convert at load).
class PreparedLinear {
 public:
  virtual ~PreparedLinear() = default;
  virtual int64_t num_out() const = 0;
  virtual int64_t num_in() const = 0;
  // Backend memory it holds (for the memory planner's accounting).
  virtual size_t nbytes() const = 0;
};

struct KvCacheView {
  TensorView k;  // [num_pages, page_size, num_kv_heads, head_dim]
  TensorView v;  // [num_pages, page_size, num_kv_heads, head_dim]
};

// A forward batch's per-sequence metadata in backend memory (all int32), the
// device image of ForwardBatch (engine/forward_batch.h).
struct PageTableView {
  int num_seqs = 0;
  int num_tokens = 0;
  int page_size = 0;
  const int32_t* query_start = nullptr;   // [num_seqs + 1]
  const int32_t* kv_len = nullptr;        // [num_seqs] tokens in cache after this step
  const int32_t* page_indptr = nullptr;   // [num_seqs + 1]
  const int32_t* page_indices = nullptr;  // [page_indptr[num_seqs]]; -1 = never read
  int max_query_len = 0;                  // host-side hints for launch shapes
  int max_kv_len = 0;                     // 0 = not known (a captured decode graph replayed
                                          // at any context): shapes must not depend on it
};

// Paged attention for a mixed batch (prefill chunks and decodes). Query token i
// of sequence s (n_s = query_start[s+1] - query_start[s]) sits at cache index
// p = kv_len[s] - n_s + i and attends to cache indices j with j <= p and, when
// sliding_window > 0, j > p - sliding_window (HF/Mistral semantics). Its own K/V
// must already be written (write_kv). GQA: head h reads kv head h / (H / KH).
struct AttentionParams {
  TensorView q;    // [num_tokens, num_heads, head_dim]
  TensorView out;  // [num_tokens, num_heads, head_dim]
  KvCacheView cache;
  PageTableView pages;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;      // usually 1/sqrt(head_dim)
  int sliding_window = 0;  // 0 = full causal
};

// See Backend::linear_fused.
struct LinearFusion {
  TensorView norm_weight;  // [K] F32, or empty
  float eps = 0.f;
  TensorView residual;     // [M, N] activation dtype, or empty
  // W's N outputs are [gate | up]; out [M, N/2] = swiglu(x' · W^T + bias), as
  // linear then swiglu() would give. No residual with it.
  bool swiglu = false;
};

// HF "rotate half" RoPE applied in place to the first rotary_dim dims of every
// head: angle_i = position * inv_freq[i] (fp32), i < rotary_dim / 2;
// x1 = x[i], x2 = x[i + rotary_dim/2]; x[i] = x1 cos - x2 sin; x[i+half] = x2 cos + x1 sin.
// Linear scaling is folded into inv_freq by the caller (inv_freq / factor).
struct RopeParams {
  TensorView q;          // [num_tokens, num_heads, head_dim]
  TensorView k;          // [num_tokens, num_kv_heads, head_dim]
  TensorView positions;  // [num_tokens] I32
  TensorView inv_freq;   // [rotary_dim / 2] F32
  int rotary_dim = 0;
};

// Sampling on the backend (semantics of sampling/sampler.h): one token per row,
// only the ids come back. sampling/backend_sample.h builds rows from requests.
struct SampleRow {
  int32_t logits_row = 0;    // row of SampleBatch::logits
  float temperature = 1.0f;  // < 1e-5: greedy
  int top_k = 0;             // <= 0 or >= vocab: off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  uint64_t seed = 0;         // the draw's key: (seed, choice_index, output_index)
  int choice_index = 0;
  int output_index = 0;      // tokens this choice has generated so far
  int penalty_begin = 0;     // its entries of SampleBatch::penalties
  int penalty_end = 0;
};
struct SamplePenaltyToken {
  int32_t id = 0;            // distinct within a row
  int32_t output_count = 0;  // occurrences in the output (presence/frequency penalties)
  bool seen = false;         // in the prompt or output (repetition penalty)
  bool banned = false;       // forced to -inf (eos/stop ids before min_tokens)
};
struct SampleBatch {
  TensorView logits;   // [L, V] F32 in backend memory; not modified
  TensorView out_ids;  // [rows.size()] I32 in backend memory
  std::vector<SampleRow> rows;
  std::vector<SamplePenaltyToken> penalties;
};

class Backend {
 public:
  virtual ~Backend() = default;
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  virtual std::string name() const = 0;  // "cpu", "cuda"
  virtual DType activation_dtype() const = 0;

  // ---- memory ----
  // kResourceExhausted when the memory is not there. Contents are undefined.
  virtual StatusOr<DeviceBuffer> allocate(size_t bytes) = 0;
  // Called by DeviceBuffer only.
  virtual void free_memory(void* data, size_t bytes) = 0;
  virtual void copy_host_to_device(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void copy_device_to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void copy_device_to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual void fill_zero(void* dst, size_t bytes) = 0;
  virtual void synchronize() = 0;
  // A device-to-host copy that does not wait: queued after every op before it,
  // into host memory the backend keeps (page-locked on CUDA, so the host goes
  // on while the device works); download_wait() waits for that copy alone (not
  // for ops queued after it) and returns its bytes, valid until the next
  // download_async(). One download at a time. Default: copies at once.
  virtual void download_async(const void* src, size_t bytes);
  virtual const void* download_wait();

  // A new tensor of the given shape (uninitialized).
  StatusOr<DeviceTensor> allocate_tensor(DType dtype, std::initializer_list<int64_t> shape);
  // Copies a host tensor into backend memory, converting floats to `dtype`.
  StatusOr<DeviceTensor> upload(const TensorView& host, DType dtype);

  // ---- step priority ----
  // A hint that the ops issued from now on belong to a latency-sensitive step
  // (high) or not (low), for a device that runs several models' steps at once
  // (`serve --concurrent-steps 2`; the step arbiter decides, memory/arbiter.h).
  // Order is kept: ops issued after the call still run after those before it.
  // Call it between steps, never while capturing a graph (CUDA ignores it
  // then). CUDA: a high- or low-priority stream (low, the CUDA default, until
  // told otherwise; a graph replays at its stream's priority). Default and
  // CPU: no-op.
  virtual void set_step_priority(bool /*high*/) {}

  // ---- graphs ----
  // A backend that can record the ops issued between begin_capture() and
  // end_capture() and replay them later with the same pointers and shapes (CUDA
  // graphs). While capturing, ops are recorded, not run; no host copies or
  // synchronization may be issued. The caller keeps every buffer the ops touch
  // alive and at the same address while it holds the graph, and updates their
  // contents (e.g. per-step metadata) before each replay. Backends without it
  // (CPU) run ops directly: supports_graphs() is false and the others fail.
  class Graph {
   public:
    virtual ~Graph() = default;
  };
  virtual bool supports_graphs() const { return false; }
  virtual Status begin_capture() { return Status(StatusCode::kUnimplemented, name() + ": no graph capture"); }
  virtual StatusOr<std::unique_ptr<Graph>> end_capture() {
    return Status(StatusCode::kUnimplemented, name() + ": no graph capture");
  }
  // Runs the recorded ops on the backend's stream. False (and nothing run) when
  // the graph is out of date because the backend's own scratch memory moved since
  // the capture: the caller captures again.
  virtual bool replay(const Graph& graph) {
    (void)graph;
    return false;
  }
  // Whether the model should concatenate linears that read the same input (q/k/v,
  // gate/up) into one prepared layer: one wide GEMV instead of several narrow ones.
  virtual bool prefers_fused_linears() const { return false; }
  // Whether attention() takes this head size: a model that needs another is
  // refused at load (kUnimplemented naming both) rather than failing mid-step.
  virtual Status check_head_dim(int /*head_dim*/) const { return ok_status(); }

  // ---- weights ----
  // Validates shapes/format (kInvalidArgument naming w.name) and copies or
  // repacks the layer into backend memory. Int4 stays int4.
  virtual StatusOr<std::unique_ptr<PreparedLinear>> prepare_linear(const LinearWeight& w) = 0;

  // ---- random weights (--load-format dummy; speed and memory runs) ----
  // Fills a float tensor in backend memory with values uniform in [lo, hi),
  // a pure function of (seed, element index). Default: drawn on the host and copied.
  virtual void fill_random_uniform(const TensorView& t, float lo, float hi, uint64_t seed);
  // prepare_linear of a layer with random values in w's exact format. w's views
  // carry only dtype and shape (data null); bias and g_idx exist when their ndim
  // is > 0 (g_idx: act-order). Int4 values uniform in [0, 15], zeros in [5, 10]
  // (GPTQ sym: 8), scales ~ sqrt(3/K)/4.6, dense and bias ~ U(+-sqrt(3/K)).
  // Default: checkpoint-layout tensors drawn on the host, then prepare_linear;
  // a device backend may draw its prepared layout in place (same distribution).
  virtual StatusOr<std::unique_ptr<PreparedLinear>> prepare_random_linear(const LinearWeight& w, uint64_t seed);

  // ---- ops (see the conventions at the top) ----
  // out[t, :] = table[ids[t], :]; table [V, H] any float dtype; out [T, H].
  virtual void embedding(const TensorView& table, const TensorView& ids, const TensorView& out) = 0;
  // out = x / sqrt(mean(x^2) + eps) * weight; x, out [T, H]; weight [H]. out may alias x.
  virtual void rms_norm(const TensorView& x, const TensorView& weight, float eps,
                        const TensorView& out) = 0;
  // residual += x; out = rms_norm(residual) * weight. out may alias x.
  virtual void add_rms_norm(const TensorView& x, const TensorView& residual, const TensorView& weight,
                            float eps, const TensorView& out) = 0;
  // out[M, N] = x[M, K] · W^T + bias.
  virtual void linear(const TensorView& x, const PreparedLinear& w, const TensorView& out) = 0;
  // Optional, where linear_fuses() is true: out = x' · W^T + bias (+ residual),
  // x' = rms_norm(x) * norm_weight when f.norm_weight is set, else x; out may
  // alias f.residual. Saves the separate norm and residual-add kernels of a
  // decode step (CUDA: M <= 4 int4 layers).
  virtual bool linear_fuses(const TensorView& /*x*/, const PreparedLinear& /*w*/, const LinearFusion& /*f*/) const {
    return false;
  }
  virtual void linear_fused(const TensorView& x, const PreparedLinear& w, const TensorView& out, const LinearFusion& f);
  virtual void rope(const RopeParams& p) = 0;
  // cache.k/v at slot_mapping[t] = k/v[t]; k, v [T, KH, D]; slots < 0 are skipped.
  virtual void write_kv(const TensorView& k, const TensorView& v, const TensorView& slot_mapping,
                        const KvCacheView& cache) = 0;
  // rope(p), then write_kv(p.k, v, slot_mapping, cache): one pass where the
  // backend fuses them (CUDA: one kernel instead of two per layer).
  virtual void rope_write_kv(const RopeParams& p, const TensorView& v, const TensorView& slot_mapping,
                             const KvCacheView& cache) {
    rope(p);
    write_kv(p.k, v, slot_mapping, cache);
  }
  virtual void attention(const AttentionParams& p) = 0;
  // rope_write_kv(rope, v, slot_mapping, attn.cache), then attention(attn), with
  // attn.q the rotated rope.q: one pass where the backend fuses them (CUDA:
  // decode steps rotate q and the new K inside the attention kernel). rope.q is
  // left unrotated where they are fused; nothing reads it afterwards.
  virtual void rope_kv_attention(const RopeParams& rope, const TensorView& v, const TensorView& slot_mapping,
                                 const AttentionParams& attn) {
    rope_write_kv(rope, v, slot_mapping, attn.cache);
    attention(attn);
  }
  // out[T, I] = silu(gate) * up; gate, up, out [T, I]. out may alias gate.
  virtual void silu_mul(const TensorView& gate, const TensorView& up, const TensorView& out) = 0;
  // out[r, :] = x[rows[r], :]; x [T, H]; rows [R] I32; out [R, H].
  virtual void gather_rows(const TensorView& x, const TensorView& rows, const TensorView& out) = 0;
  // out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]; gate_up [T, 2I] (the output of a
  // gate and an up projection concatenated along N), out [T, I].
  virtual void swiglu(const TensorView& gate_up, const TensorView& out) = 0;
  // Splits columns: outs[i][t, :] = src[t, c_i : c_i + n_i], c_i = n_0 + ... + n_(i-1);
  // src [T, sum n_i], outs[i] [T, n_i] (or [T, heads, dim] with heads * dim = n_i), same dtype.
  virtual void split_columns(const TensorView& src, const std::vector<TensorView>& outs) = 0;
  // Element-wise dtype conversion, same shape (e.g. logits to F32).
  virtual void convert(const TensorView& src, const TensorView& dst) = 0;
  // For every (src, dst) page pair (host list), copy K and V of that page.
  virtual void copy_kv_pages(const KvCacheView& cache,
                             const std::vector<std::pair<int32_t, int32_t>>& src_dst) = 0;
  // out_ids[r] = the token drawn for rows[r]. The default (the reference,
  // sampling/backend_sample.cpp) copies the rows to the host and runs the CPU sampler.
  virtual void sample(const SampleBatch& b);

 private:
  std::vector<unsigned char> download_;  // the default download_async's copy
};

// The CPU backend (always compiled). num_threads <= 0: all cores. By default
// every output element is computed the same way whatever the batch (batch
// invariant); blas_prefill routes linears of >= 16 rows through OpenBLAS sgemm
// instead (faster prefill, results then depend on the batch's size).
std::unique_ptr<Backend> make_cpu_backend(int num_threads = 0, bool blas_prefill = false);

}  // namespace tandem
