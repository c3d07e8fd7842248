// Kernel microbenchmarks at the real shapes of Mistral-7B and DeepSeek-Coder-33B:
// int4 GEMM GB/s (M = 1, 16) and TFLOP/s (M = 2048), dense fp16 GEMM TFLOP/s,
// decode batches M = 32..256 on the tensor-core int4 GEMM vs dequantize + cuBLASLt,
// paged attention decode GB/s, and the device copy bandwidth measured in the
// same run (bytes read + written). CUDA events, medians; weights rotate over
// copies larger than L2 so every call streams from HBM. Random data, never zeros.
//
// Attention prefill: a 2,048-token prompt through the CUDA-core kernel (old) and
// the tensor-core kernel (new), TFLOP/s as a fraction of the tensor-core peak
// measured here (cuBLASLt fp16 GEMM 8192^3).
//
// GPU sampling: microseconds per decode step of B rows (top-p alone, greedy).
//
//   tandem_cuda_bench [--json FILE] [--quick] [--profile] [--prefill-only]
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <map>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/int4_layout.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/lt_gemm.h"

using namespace tandem::cuda;

#define CK(x)                                                                          \
  do {                                                                                 \
    cudaError_t e_ = (x);                                                              \
    if (e_ != cudaSuccess) {                                                           \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                    \
    }                                                                                  \
  } while (0)

namespace {

__global__ void fill_random_bits(uint32_t* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    p[i] = x;
  }
}
// fp16 values in [-1, 1) (and scale/zero pairs with scale ~0.01, zero 1024 + 0..15).
__global__ void fill_random_half(__half* p, int64_t n, uint32_t seed, float lo, float hi) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15;
    p[i] = __float2half(lo + (hi - lo) * (x & 0xffffff) / 16777216.f);
  }
}
// Scales [ng][N] in [0.005, 0.015), then zeros [N][ng] as 1024 + (0..15), as the repacker writes them.
__global__ void fill_scale_zero(__half* p, int64_t n_scales, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < 2 * n_scales; i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    x ^= x >> 16; x *= 0x7feb352du;
    p[i] = i < n_scales ? __float2half(0.005f + 0.01f * (x & 0xff) / 256.f) : __float2half(1024.f + (x >> 28));
  }
}

// Rewrites x[0:K] in place (one block): a stand-in for the RMSNorm that writes
// the GEMV's input in a decode step (which, like it, allows dependent launch).
__global__ void touch_rows(__half* x, int K) {
  allow_dependent_launch();
  for (int i = threadIdx.x; i < K; i += blockDim.x) x[i] = __hneg(__hneg(x[i]));
}

void* dalloc(size_t bytes) {
  void* p = nullptr;
  CK(cudaMalloc(&p, bytes));
  return p;
}

// Median milliseconds per call of `fn`: each sample times `inner` back-to-back
// calls between two events (as in a decode step), after `warm` calls.
cudaStream_t st = nullptr;  // the benchmark's stream (graphs need a non-legacy stream)

double time_ms(const std::function<void(int)>& fn, int warm = 3, int reps = 20, int inner = 10) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < warm; ++i) fn(i);
  std::vector<float> t;
  int call = 0;
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(a, st));
    for (int j = 0; j < inner; ++j) fn(call++);
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms / inner);
  }
  CK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return t[t.size() / 2];
}

// The same, with the `inner` calls captured once into a CUDA graph and replayed:
// no host launch gaps, as in a graph-captured decode step.
double time_graph_ms(const std::function<void(int)>& fn, int reps = 20, int inner = 20) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  fn(0);  // warm outside the capture
  CK(cudaStreamSynchronize(st));
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (int j = 0; j < inner; ++j) fn(j);
  CK(cudaStreamEndCapture(st, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  const double ms = time_ms([&](int) { CK(cudaGraphLaunch(exec, st)); }, 2, reps, 1) / inner;
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  return ms;
}

// ||a - b|| / ||b|| of two device fp16 arrays of n elements (after the
// benchmark's stream finishes); infinity when a is not finite.
double rel_diff_half(const __half* a, const __half* b, size_t n) {
  std::vector<__half> ha(n), hb(n);
  CK(cudaStreamSynchronize(st));
  CK(cudaMemcpy(ha.data(), a, n * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hb.data(), b, n * 2, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double va = __half2float(ha[i]), vb = __half2float(hb[i]);
    num += (va - vb) * (va - vb);
    den += vb * vb;
  }
  return std::isfinite(num) && den > 0 ? std::sqrt(num / den) : INFINITY;
}

struct Shape {
  const char* model;
  const char* name;
  int K, N;
  int per_layer;  // layers of the model (for per-step totals)
};

std::string buf_printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string buf_printf(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

std::string json;
void record(const std::string& kv) { json += (json.empty() ? "" : ",\n") + std::string("  {") + kv + "}"; }

int write_json(const char* path, const char* device) {
  if (!path) return 0;
  FILE* f = std::fopen(path, "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path);
    return 1;
  }
  std::fprintf(f, "{\"device\": \"%s\", \"results\": [\n%s\n]}\n", device, json.c_str());
  std::fclose(f);
  return 0;
}

// Attention prefill of one L-token prompt (page size 16, scattered pages): the
// CUDA-core kernel vs the tensor-core kernel, causal FLOPs 4 * H * D * L(L+1)/2,
// against the fp16 tensor-core peak measured with cuBLASLt at 8192^3. Also checks
// that the two kernels agree (||new - old|| / ||old||).
void bench_attention_prefill(int reps) {
  double peak_tflops = 0;
  {
    const int n = 8192;
    __half* a = static_cast<__half*>(dalloc(static_cast<size_t>(n) * n * 2));
    __half* b = static_cast<__half*>(dalloc(static_cast<size_t>(n) * n * 2));
    __half* c = static_cast<__half*>(dalloc(static_cast<size_t>(n) * n * 2));
    fill_random_half<<<1024, 256>>>(a, static_cast<int64_t>(n) * n, 21, -1, 1);
    fill_random_half<<<1024, 256>>>(b, static_cast<int64_t>(n) * n, 22, -1, 1);
    CK(cudaDeviceSynchronize());
    void* ws = dalloc(32 << 20);
    LtGemm lt;
    const char* err = nullptr;
    if (!lt.init(ws, 32 << 20, &err)) {
      std::fprintf(stderr, "cuBLASLt: %s\n", err);
      std::exit(1);
    }
    const double ms = time_ms([&](int) {
      LtGemmArgs g{a, b, c, n, n, n, n, n, ElemType::kF16, ElemType::kF16, ElemType::kF16};
      if (lt.run(g, st) != 0) std::exit(1);
    }, 3, reps, 2);
    peak_tflops = 2.0 * n * n * n / ms / 1e9;
    std::printf("\ntensor-core peak (cuBLASLt fp16 %d^3, fp32 accumulate): %.0f TFLOP/s\n", n, peak_tflops);
    record("\"bench\": \"gemm_peak\", \"n\": " + std::to_string(n) + ", \"tflops\": " + std::to_string(peak_tflops));
    CK(cudaStreamSynchronize(st));
    for (void* p : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(c), ws}) CK(cudaFree(p));
  }
  std::printf("%-13s %5s %4s | %10s %8s %7s | %10s %8s %7s | %8s %9s | %10s %8s %9s\n", "attn prefill", "len", "D",
              "old us", "TFLOP/s", "% peak", "new us", "TFLOP/s", "% peak", "speedup", "rel diff", "2-stage us",
              "TFLOP/s", "rel diff");
  struct Case { const char* model; int heads, kv_heads, dim, len; };
  const Case cases[] = {{"mistral-7b", 32, 8, 128, 2048}, {"deepseek-33b", 56, 8, 128, 2048},
                        {"mistral-7b", 32, 8, 128, 8192}, {"head-dim-64", 32, 8, 64, 2048}};
  for (const Case& c : cases) {
    const int D = c.dim, ps = 16, L = c.len;
    const int num_pages = (L + ps - 1) / ps;
    const size_t cache_elems = static_cast<size_t>(num_pages) * ps * c.kv_heads * D;
    __half* kc = static_cast<__half*>(dalloc(cache_elems * 2));
    __half* vc = static_cast<__half*>(dalloc(cache_elems * 2));
    fill_random_half<<<1024, 256>>>(kc, cache_elems, 31, -1, 1);
    fill_random_half<<<1024, 256>>>(vc, cache_elems, 32, -1, 1);
    const size_t q_elems = static_cast<size_t>(L) * c.heads * D;
    __half* q = static_cast<__half*>(dalloc(q_elems * 2));
    __half* o_old = static_cast<__half*>(dalloc(q_elems * 2));
    __half* o_new = static_cast<__half*>(dalloc(q_elems * 2));
    fill_random_half<<<1024, 256>>>(q, q_elems, 33, -2, 2);
    std::vector<int32_t> meta_h;  // query_start [2], kv_len [1], page_indptr [2], token_seq [L], pages
    meta_h = {0, L, L, 0, num_pages};
    for (int i = 0; i < L; ++i) meta_h.push_back(0);
    for (int i = 0; i < num_pages; ++i) meta_h.push_back((i * 7919) % num_pages);
    int32_t* meta = static_cast<int32_t*>(dalloc(meta_h.size() * 4));
    CK(cudaMemcpy(meta, meta_h.data(), meta_h.size() * 4, cudaMemcpyHostToDevice));
    void* tiles = dalloc(static_cast<size_t>(attention_prefill_max_tiles(L, 1, 16)) * 8 + 64);
    AttnKernelParams p{};
    p.q = q; p.k_cache = kc; p.v_cache = vc;
    p.query_start = meta; p.kv_len = meta + 2; p.page_indptr = meta + 3; p.token_seq = meta + 5;
    p.page_indices = meta + 5 + L;
    p.num_tokens = L; p.num_seqs = 1; p.num_q_heads = c.heads; p.num_kv_heads = c.kv_heads;
    p.head_dim = D; p.page_size = ps; p.q_stride = static_cast<int64_t>(c.heads) * D; p.out_stride = p.q_stride;
    p.token_stride = static_cast<int64_t>(c.kv_heads) * D; p.page_stride = p.token_stride * ps; p.window = 0;
    p.scale = 1.f / std::sqrt(static_cast<float>(D)); p.num_splits = 1; p.split_size = 1 << 30;
    p.type = ElemType::kF16; p.variant = 0;
    CK(cudaDeviceSynchronize());
    AttnKernelParams p_old = p, p_new = p;
    p_old.out = o_old;
    p_new.out = o_new;
    p_new.prefill_min_query = 16;
    p_new.prefill_tiles = tiles;
    p_new.prefill_all = true;
    const double flops = 4.0 * c.heads * D * (static_cast<double>(L) * (L + 1) / 2);
    const int inner = L > 4096 ? 1 : 2;
    const double ms_old = time_ms([&](int) { launch_attention(p_old, st); }, 1, std::min(reps, 10), inner);
    const double ms_new = time_ms([&](int) { launch_attention(p_new, st); }, 3, reps, inner);
    auto diff_vs_old = [&](const __half* dev) { return rel_diff_half(dev, o_old, q_elems); };
    const double diff = diff_vs_old(o_new);
    // Kernel variant 1: the two-stage K/V pipeline, output poisoned first.
    AttnKernelParams p_v1 = p_new;
    p_v1.variant = 1;
    CK(cudaMemset(o_new, 0xff, q_elems * 2));
    const double ms_v1 = time_ms([&](int) { launch_attention(p_v1, st); }, 3, reps, inner);
    CK(cudaStreamSynchronize(st));
    const double diff_v1 = diff_vs_old(o_new);
    const double tf_old = flops / ms_old / 1e9, tf_new = flops / ms_new / 1e9, tf_v1 = flops / ms_v1 / 1e9;
    std::printf("%-13s %5d %4d | %10.1f %8.1f %6.1f%% | %10.1f %8.1f %6.1f%% | %7.1fx %9.2e | %10.1f %8.1f %9.2e\n",
                c.model, L, D, ms_old * 1e3, tf_old, 100 * tf_old / peak_tflops, ms_new * 1e3, tf_new,
                100 * tf_new / peak_tflops, ms_old / ms_new, diff, ms_v1 * 1e3, tf_v1, diff_v1);
    record("\"bench\": \"attention_prefill\", \"model\": \"" + std::string(c.model) + "\", \"heads\": " +
           std::to_string(c.heads) + ", \"kv_heads\": " + std::to_string(c.kv_heads) + ", \"head_dim\": " +
           std::to_string(D) + ", \"len\": " + std::to_string(L) + ", \"old_us\": " + std::to_string(ms_old * 1e3) +
           ", \"new_us\": " + std::to_string(ms_new * 1e3) + ", \"old_tflops\": " + std::to_string(tf_old) +
           ", \"new_tflops\": " + std::to_string(tf_new) + ", \"peak_tflops\": " + std::to_string(peak_tflops) +
           ", \"rel_diff\": " + std::to_string(diff) + ", \"two_stage_us\": " + std::to_string(ms_v1 * 1e3) +
           ", \"two_stage_tflops\": " + std::to_string(tf_v1) + ", \"two_stage_rel_diff\": " + std::to_string(diff_v1));
    for (void* ptr : {static_cast<void*>(kc), static_cast<void*>(vc), static_cast<void*>(q), static_cast<void*>(o_old),
                      static_cast<void*>(o_new), static_cast<void*>(meta), tiles})
      CK(cudaFree(ptr));
  }
}

// Sampling on the GPU (sample.cu) per decode step: B rows of fp32 logits, top-p
// 0.95 alone (the slowest setting: the 1024-token head test, then the mass
// search) and greedy, launched as the backend does (at most 64 rows a launch).
void bench_sampling(int reps) {
  std::printf("\n%-8s %6s %5s | %10s %10s\n", "sampling", "vocab", "rows", "top-p us", "greedy us");
  for (int V : {32000, 152064}) {
    for (int B : {1, 32, 256}) {
      float* logits = static_cast<float*>(dalloc(static_cast<size_t>(B) * V * 4));
      // Random logits in [-8, 8): fp16 bits through fill_random_half, then widened.
      __half* h = static_cast<__half*>(dalloc(static_cast<size_t>(B) * V * 2));
      fill_random_half<<<1024, 256>>>(h, static_cast<int64_t>(B) * V, 41, -8, 8);
      CK(cudaDeviceSynchronize());
      launch_convert(h, ElemType::kF16, logits, ElemType::kF32, static_cast<int64_t>(B) * V, st);
      const int64_t row_bytes = sample_scratch_row_bytes(V);
      void* scratch = dalloc(static_cast<size_t>(std::min(B, 64)) * row_bytes);
      std::vector<SampleKernelRow> rows(B);
      for (int i = 0; i < B; ++i) rows[i] = {static_cast<uint64_t>(i), i, 0, 0.8f, 0.95f, 0.f, 1.f, 0.f, 0.f, 0, 10, 0, 0};
      SampleKernelRow* d_rows = static_cast<SampleKernelRow*>(dalloc(rows.size() * sizeof(SampleKernelRow)));
      int32_t* ids = static_cast<int32_t*>(dalloc(static_cast<size_t>(B) * 4));
      auto run_all = [&](const SampleKernelRow* r) {
        for (int r0 = 0; r0 < B; r0 += 64) {
          SampleKernelParams p{logits, V, scratch, row_bytes, r + r0, nullptr, ids + r0, std::min(64, B - r0), V};
          launch_sample(p, st);
        }
      };
      CK(cudaMemcpy(d_rows, rows.data(), rows.size() * sizeof(SampleKernelRow), cudaMemcpyHostToDevice));
      const double ms_p = time_ms([&](int) { run_all(d_rows); }, 2, reps, 2);
      for (auto& r : rows) r.temperature = 0.f;
      CK(cudaMemcpy(d_rows, rows.data(), rows.size() * sizeof(SampleKernelRow), cudaMemcpyHostToDevice));
      const double ms_g = time_ms([&](int) { run_all(d_rows); }, 2, reps, 2);
      CK(cudaStreamSynchronize(st));
      std::printf("%-8s %6d %5d | %10.1f %10.1f\n", "", V, B, ms_p * 1e3, ms_g * 1e3);
      record("\"bench\": \"sampling\", \"vocab\": " + std::to_string(V) + ", \"rows\": " + std::to_string(B) +
             ", \"top_p_us\": " + std::to_string(ms_p * 1e3) + ", \"greedy_us\": " + std::to_string(ms_g * 1e3));
      for (void* ptr : {static_cast<void*>(logits), static_cast<void*>(h), scratch, static_cast<void*>(d_rows),
                        static_cast<void*>(ids)})
        CK(cudaFree(ptr));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* json_path = nullptr;
  bool quick = false;
  bool profile = false;  // one GEMV shape and one attention case, for a profiler
  bool copy_only = false;  // only the copy bandwidth (scripts/gpu-check e2e's roofline)
  bool prefill_only = false;  // only the copy bandwidth, GEMM peak, attention prefill and sampling
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--profile")) profile = quick = true;
    else if (!std::strcmp(argv[i], "--copy-only")) copy_only = true;
    else if (!std::strcmp(argv[i], "--prefill-only")) prefill_only = true;
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--quick] [--profile] [--copy-only] [--prefill-only]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, L2 %.0f MiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize / 1048576.0);
  const int sms = prop.multiProcessorCount;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  CK(int4_gemv_configure());
  CK(int4_gemm_configure());
  const int reps = quick ? 5 : 20;

  // 1. Device copy bandwidth (read + write).
  const size_t copy_bytes = size_t{1} << 30;
  void* c0 = dalloc(copy_bytes);
  void* c1 = dalloc(copy_bytes);
  fill_random_bits<<<1024, 256, 0, st>>>(static_cast<uint32_t*>(c0), copy_bytes / 4, 1);
  const double copy_ms = time_ms([&](int) { CK(cudaMemcpyAsync(c1, c0, copy_bytes, cudaMemcpyDeviceToDevice, st)); }, 2, reps, 2);
  const double copy_gbs = 2.0 * copy_bytes / copy_ms / 1e6;
  std::printf("device copy: %.0f GB/s (read + write)\n", copy_gbs);
  record("\"bench\": \"copy\", \"gbs\": " + std::to_string(copy_gbs));
  CK(cudaFree(c0));
  CK(cudaFree(c1));
  if (copy_only) return write_json(json_path, prop.name);

  if (prefill_only) {
    bench_attention_prefill(reps);
    bench_sampling(reps);
    return write_json(json_path, prop.name);
  }

  // Workspaces.
  float* partial = static_cast<float*>(dalloc(size_t{64} << 20));
  const int max_k = 19200, max_m = 2048;
  __half* x = static_cast<__half*>(dalloc(static_cast<size_t>(max_m) * max_k * 2));
  __half* y = static_cast<__half*>(dalloc(static_cast<size_t>(max_m) * 38400 * 2));
  fill_random_half<<<1024, 256>>>(x, int64_t{max_m} * max_k, 7, -1.f, 1.f);
  CK(cudaDeviceSynchronize());  // fills ran on the legacy stream
  __half* deq = static_cast<__half*>(dalloc(size_t{38400} * 7168 * 2));  // largest K x N below
  void* lt_ws = dalloc(32 << 20);
  LtGemm lt;
  const char* err = nullptr;
  if (!lt.init(lt_ws, 32 << 20, &err)) {
    std::fprintf(stderr, "cuBLASLt: %s\n", err);
    return 1;
  }

  // Fused q/k/v and gate/up shapes; per_layer = layers of the model.
  const Shape shapes[] = {
      {"mistral-7b", "qkv", 4096, 6144, 32},   {"mistral-7b", "o", 4096, 4096, 32},
      {"mistral-7b", "gate_up", 4096, 28672, 32}, {"mistral-7b", "down", 14336, 4096, 32},
      {"deepseek-33b", "qkv", 7168, 9216, 62}, {"deepseek-33b", "o", 7168, 7168, 62},
      {"deepseek-33b", "gate_up", 7168, 38400, 62}, {"deepseek-33b", "down", 19200, 7168, 62},
  };
  std::map<std::string, double> model_bytes;
  for (const Shape& s : shapes) model_bytes[s.model] += (static_cast<double>(s.K) * s.N / 2 + static_cast<double>(s.N) * (s.K / 128) * 4) * s.per_layer;
  std::string table = buf_printf("\n%-13s %-8s %6s %6s | %9s %9s | %9s %9s | %10s %10s\n", "model", "layer", "K", "N",
                                 "M=1 GB/s", "(% copy)", "M=16 GB/s", "(% copy)", "M=2048 TF", "dense TF");
  std::map<std::string, double> model_us;  // int4 linears of one decode step (all layers), default config
  // Split-K partials of the tensor-core GEMM at the decode batch sizes below,
  // for its own split counts and the forced ones of the sweep.
  const int gemm_rows[] = {32, 64, 128, 256};
  const int gemm_splits[] = {1, 2, 3, 4, 6, 8, 12, 16};
  size_t gemm_partial_floats = 1;
  for (const Shape& s : shapes)
    for (int M : gemm_rows) gemm_partial_floats = std::max(gemm_partial_floats, size_t{16} * M * s.N);
  float* gemm_partial = static_cast<float*>(dalloc(gemm_partial_floats * 4));
  __half* y_deq = static_cast<__half*>(dalloc(size_t{256} * 38400 * 2));  // the dequantize path's output, compared
  std::string gemm_table = buf_printf("\n%-13s %-8s %4s | %9s %7s %7s %6s | %9s %7s %7s | %7s %9s\n", "int4 decode",
                                      "layer", "M", "TC us", "TF/s", "GB/s", "splits", "deq us", "TF/s", "GB/s",
                                      "speedup", "rel diff");
  for (const Shape& s : shapes) {
    if (profile && std::strcmp(s.name, "gate_up") != 0) continue;
    const size_t w_bytes = static_cast<size_t>(s.K) * s.N / 2;
    const size_t sz_elems = static_cast<size_t>(s.N) * (s.K / 128);
    // Enough copies that the set exceeds 4x L2: every call reads from HBM.
    const int copies = std::max<int>(2, static_cast<int>((4.0 * prop.l2CacheSize) / w_bytes) + 1);
    std::vector<uint32_t*> qw(copies);
    std::vector<__half*> sz(copies);
    for (int c = 0; c < copies; ++c) {
      qw[c] = static_cast<uint32_t*>(dalloc(w_bytes));
      sz[c] = static_cast<__half*>(dalloc(sz_elems * 4));
      fill_random_bits<<<1024, 256>>>(qw[c], w_bytes / 4, 100 + c);
      fill_scale_zero<<<1024, 256>>>(sz[c], sz_elems, 200 + c);
    }
    CK(cudaDeviceSynchronize());
    const size_t bytes_read = w_bytes + sz_elems * 4;
    double gbs[2];
    int best_bps[2];
    int idx = 0;
    for (int M : {1, 16}) {
      gbs[idx] = 0;
      // {variant, blocks_per_sm, pdl, dep, ring}: v0 default, v1, v2 auto K split (without and
      // with PDL), v2 forced to 100 + k warps along K; dep = 1: a small kernel that rewrites x
      // runs before each GEMV (as RMSNorm does in a decode step), so PDL can overlap only its
      // tail; ring: v2's shared-memory ring of that many rounds (CudaBackendOptions::gemv_ring).
      const int configs[][5] = {{0, 8, 0, 0, 0},   {1, 8, 0, 0, 0}, {2, 0, 0, 0, 0}, {2, 0, 1, 0, 0},
                                {2, 102, 1, 0, 0}, {2, 104, 1, 0, 0}, {2, 108, 1, 0, 0}, {0, 8, 0, 1, 0},
                                {2, 0, 0, 1, 0},   {2, 0, 1, 1, 0}, {2, 0, 1, 0, 2}, {2, 0, 1, 0, 3},
                                {2, 0, 1, 0, 4},   {2, 104, 1, 0, 3}, {2, 0, 1, 1, 3}};
      for (const auto& cfg : configs) {
        const int variant = cfg[0], bps = cfg[1], ring = cfg[4];
        const bool pdl = cfg[2] != 0, dep = cfg[3] != 0;
        if (variant == 2 && M > 4 && (bps != 0 || pdl)) continue;  // v2 falls back to v0 above M = 4
        if (dep && M > 1) continue;
        auto call = [&](int i) {
          if (dep) touch_rows<<<1, 256, 0, st>>>(x, s.K);
          Int4Weight w{qw[i % copies], sz[i % copies], nullptr, nullptr, s.K, s.N, 128};
          Int4GemvParams p{.w = w, .x = x, .y = y, .M = M, .x_stride = s.K, .y_stride = s.N, .partial = partial,
                           .num_sms = sms, .blocks_per_sm = bps, .variant = variant, .type = ElemType::kF16,
                           .y_type = ElemType::kF16, .fuse = {}};
          p.pdl = pdl;
          p.ring = ring;
          launch_int4_gemv(p, st);
        };
        const double ms_stream = time_ms(call, 3, reps);
        const double ms = time_graph_ms(call, reps);
        const double v = (bytes_read + static_cast<size_t>(M) * (s.K + s.N) * 2) / ms / 1e6;
        const int kp = variant == 2 ? (bps > 100 ? bps - 100 : int4_gemv_v2_kparts(s.K, s.N, sms)) : 0;
        std::printf("  [%s %s M=%d variant %d cfg %d (kparts %d) pdl %d dep %d ring %d: stream %.1f us, graph %.1f us, %.0f GB/s, %.0f%% copy]\n",
                    s.model, s.name, M, variant, bps, kp, pdl, dep, ring, ms_stream * 1e3, ms * 1e3, v, 100 * v / copy_gbs);
        record("\"bench\": \"int4_gemv\", \"model\": \"" + std::string(s.model) + "\", \"layer\": \"" + s.name +
               "\", \"M\": " + std::to_string(M) + ", \"variant\": " + std::to_string(variant) + ", \"cfg\": " +
               std::to_string(bps) + ", \"pdl\": " + std::to_string(pdl) + ", \"dep\": " + std::to_string(dep) +
               ", \"ring\": " + std::to_string(ring) + ", \"us_graph\": " + std::to_string(ms * 1e3) + ", \"us_stream\": " +
               std::to_string(ms_stream * 1e3) + ", \"gbs\": " + std::to_string(v));
        const std::string key = std::string(s.model) + "/" + std::to_string(M) + "v" + std::to_string(variant) +
                                (pdl ? "pdl" : "") + (dep ? "+dep" : "") + (ring ? "ring" + std::to_string(ring) : "");
        if ((variant < 2 && bps == 8) || (variant == 2 && bps == 0)) model_us[key] += ms * 1e3 * s.per_layer;
        if (!dep && v > gbs[idx]) gbs[idx] = v, best_bps[idx] = variant * 1000 + bps + (pdl ? 10000 : 0) + ring * 100000;
      }
      ++idx;
    }
    if (profile) break;
    // Decode batches: the tensor-core int4 GEMM vs dequantize + cuBLASLt (the
    // path it replaces), and how far apart their outputs are.
    for (int M : gemm_rows) {
      const int splits = int4_gemm_num_splits(M, s.K, s.N, sms);
      auto tc = [&](int i, __half* out, int force_splits = 0) {
        Int4Weight w{qw[i % copies], sz[i % copies], nullptr, nullptr, s.K, s.N, 128};
        Int4GemmParams p{w, x, out, M, s.K, s.N, gemm_partial, sms, force_splits, ElemType::kF16, ElemType::kF16};
        launch_int4_gemm(p, st);
      };
      auto dequant = [&](int i, __half* out) {
        Int4Weight w{qw[i % copies], sz[i % copies], nullptr, nullptr, s.K, s.N, 128};
        launch_int4_dequant(w, deq, ElemType::kF16, st);
        LtGemmArgs g{deq, x, out, M, s.N, s.K, s.K, s.N, ElemType::kF16, ElemType::kF16, ElemType::kF16};
        if (lt.run(g, st) != 0) std::exit(1);
      };
      const double ms_tc = time_ms([&](int i) { tc(i, y); }, 3, reps);
      // Forced split counts: what int4_gemm_num_splits should have picked.
      std::string sweep;
      for (int fs : gemm_splits) {
        if (fs > s.K / 128) continue;
        const double us = time_ms([&](int i) { tc(i, y, fs); }, 2, quick ? 3 : 10) * 1e3;
        sweep += buf_printf(" %d:%.1f", fs, us);
        record("\"bench\": \"int4_gemm_splits\", \"model\": \"" + std::string(s.model) + "\", \"layer\": \"" +
               s.name + "\", \"M\": " + std::to_string(M) + ", \"splits\": " + std::to_string(fs) +
               ", \"us\": " + std::to_string(us));
      }
      std::printf("  [%s %s M=%d tensor-core GEMM: %.1f us at %d splits; forced splits:us%s]\n", s.model, s.name, M,
                  ms_tc * 1e3, splits, sweep.c_str());
      const double ms_dq = time_ms([&](int i) { dequant(i, y); }, 2, quick ? 3 : 10);
      tc(0, y);
      dequant(0, y_deq);
      const double diff = rel_diff_half(y, y_deq, static_cast<size_t>(M) * s.N);
      const double flops = 2.0 * M * s.K * s.N;
      model_us[std::string(s.model) + "/tc" + std::to_string(M)] += ms_tc * 1e3 * s.per_layer;
      model_us[std::string(s.model) + "/deq" + std::to_string(M)] += ms_dq * 1e3 * s.per_layer;
      gemm_table += buf_printf("%-13s %-8s %4d | %9.1f %7.0f %7.0f %6d | %9.1f %7.0f %7.0f | %6.2fx %9.1e\n", s.model,
                               s.name, M, ms_tc * 1e3, flops / ms_tc / 1e9, bytes_read / ms_tc / 1e6, splits,
                               ms_dq * 1e3, flops / ms_dq / 1e9, bytes_read / ms_dq / 1e6, ms_dq / ms_tc, diff);
      record("\"bench\": \"int4_gemm_decode\", \"model\": \"" + std::string(s.model) + "\", \"layer\": \"" + s.name +
             "\", \"K\": " + std::to_string(s.K) + ", \"N\": " + std::to_string(s.N) + ", \"M\": " + std::to_string(M) +
             ", \"splits\": " + std::to_string(splits) + ", \"tc_us\": " + std::to_string(ms_tc * 1e3) +
             ", \"tc_tflops\": " + std::to_string(flops / ms_tc / 1e9) + ", \"tc_weight_gbs\": " +
             std::to_string(bytes_read / ms_tc / 1e6) + ", \"dequant_us\": " + std::to_string(ms_dq * 1e3) +
             ", \"dequant_tflops\": " + std::to_string(flops / ms_dq / 1e9) + ", \"dequant_weight_gbs\": " +
             std::to_string(bytes_read / ms_dq / 1e6) + ", \"rel_diff\": " + std::to_string(diff));
    }
    // Prefill: dequantize + cuBLASLt at M = 2048.
    const int M = 2048;
    const double ms_pre = time_ms([&](int i) {
      Int4Weight w{qw[i % copies], sz[i % copies], nullptr, nullptr, s.K, s.N, 128};
      launch_int4_dequant(w, deq, ElemType::kF16, st);
      LtGemmArgs g{deq, x, y, M, s.N, s.K, s.K, s.N, ElemType::kF16, ElemType::kF16, ElemType::kF16};
      if (lt.run(g, st) != 0) std::exit(1);
    }, 2, quick ? 3 : 10);
    const double ms_dense = time_ms([&](int) {
      LtGemmArgs g{deq, x, y, M, s.N, s.K, s.K, s.N, ElemType::kF16, ElemType::kF16, ElemType::kF16};
      if (lt.run(g, st) != 0) std::exit(1);
    }, 2, quick ? 3 : 10);
    const double flops = 2.0 * M * s.K * s.N;
    table += buf_printf("%-13s %-8s %6d %6d | %9.0f %8.0f%% | %9.0f %8.0f%% | %10.0f %10.0f  (best ring*100000+pdl*10000+variant*1000+cfg: %d, %d)\n",
                        s.model, s.name, s.K, s.N, gbs[0], 100 * gbs[0] / copy_gbs, gbs[1], 100 * gbs[1] / copy_gbs,
                        flops / ms_pre / 1e9, flops / ms_dense / 1e9, best_bps[0], best_bps[1]);
    record("\"bench\": \"int4_gemm\", \"model\": \"" + std::string(s.model) + "\", \"layer\": \"" + s.name +
           "\", \"K\": " + std::to_string(s.K) + ", \"N\": " + std::to_string(s.N) + ", \"m1_gbs\": " +
           std::to_string(gbs[0]) + ", \"m16_gbs\": " + std::to_string(gbs[1]) + ", \"m2048_tflops\": " +
           std::to_string(flops / ms_pre / 1e9) + ", \"dense_m2048_tflops\": " + std::to_string(flops / ms_dense / 1e9));
    for (int c = 0; c < copies; ++c) {
      CK(cudaFree(qw[c]));
      CK(cudaFree(sz[c]));
    }
  }

  std::printf("%s", table.c_str());
  std::printf("%s", gemm_table.c_str());
  for (const char* m : {"mistral-7b", "deepseek-33b"}) {
    for (int M : gemm_rows) {
      const double us_tc = model_us[std::string(m) + "/tc" + std::to_string(M)];
      const double us_dq = model_us[std::string(m) + "/deq" + std::to_string(M)];
      std::printf("%s int4 linears of one decode step (M=%d): tensor-core GEMM %.0f us, dequantize + cuBLASLt %.0f us\n",
                  m, M, us_tc, us_dq);
      record("\"bench\": \"int4_decode_step_gemm\", \"model\": \"" + std::string(m) + "\", \"M\": " +
             std::to_string(M) + ", \"tc_us\": " + std::to_string(us_tc) + ", \"dequant_us\": " + std::to_string(us_dq));
    }
  }
  CK(cudaFree(gemm_partial));
  CK(cudaFree(y_deq));
  for (const char* m : {"mistral-7b", "deepseek-33b"}) {
    const double roof_us = model_bytes[m] / (copy_gbs * 1e3);
    for (const char* b : {"/1v0", "/1v1", "/1v2", "/1v2pdl", "/1v0+dep", "/1v2+dep", "/1v2pdl+dep", "/1v2pdlring2",
                          "/1v2pdlring3", "/1v2pdlring4", "/1v2pdl+depring3", "/16v0", "/16v1", "/16v2"}) {
      const double us = model_us[std::string(m) + b];
      std::printf("%s int4 linears of one decode step (M=%s): %.0f us, %.0f GB/s, %.0f%% of copy-bandwidth roofline (%.0f us)\n",
                  m, b + 1, us, model_bytes[m] / us / 1e3, 100 * roof_us / us, roof_us);
      record("\"bench\": \"int4_decode_step\", \"model\": \"" + std::string(m) + "\", \"config\": \"" + std::string(b + 1) + "\"" +
             ", \"us\": " + std::to_string(us) + ", \"roofline_fraction\": " + std::to_string(roof_us / us));
    }
  }

  // Attention decode: B sequences of L cached tokens, 32 q / 8 kv heads (Mistral),
  // 56 / 8 (DeepSeek-33B), head dim 128, page size 16.
  std::printf("\n%-13s %5s %6s | %9s %9s %8s\n", "attention", "batch", "ctx", "us", "GB/s", "% copy");
  struct AttnCase { const char* model; int heads, kv_heads, batch, ctx; };
  const AttnCase cases[] = {{"mistral-7b", 32, 8, 1, 512},  {"mistral-7b", 32, 8, 1, 576},
                            {"deepseek-33b", 56, 8, 1, 576}, {"mistral-7b", 32, 8, 1, 4096},
                            {"mistral-7b", 32, 8, 8, 4096}, {"mistral-7b", 32, 8, 32, 2048},
                            {"mistral-7b", 32, 8, 128, 1024}, {"deepseek-33b", 56, 8, 1, 4096},
                            {"deepseek-33b", 56, 8, 32, 2048}};
  for (const AttnCase& c : cases) {
    if (profile && (c.batch != 1 || c.ctx != 4096 || c.heads != 32)) continue;
    const int D = 128, ps = 16;
    const int pages_per_seq = (c.ctx + ps - 1) / ps;
    const int num_pages = pages_per_seq * c.batch;
    const size_t cache_elems = static_cast<size_t>(num_pages) * ps * c.kv_heads * D;
    __half* kc = static_cast<__half*>(dalloc(cache_elems * 2));
    __half* vc = static_cast<__half*>(dalloc(cache_elems * 2));
    fill_random_half<<<1024, 256>>>(kc, cache_elems, 11, -1, 1);
    fill_random_half<<<1024, 256>>>(vc, cache_elems, 12, -1, 1);
    std::vector<int32_t> qs(c.batch + 1), kl(c.batch, c.ctx), pip(c.batch + 1), pidx(num_pages), ts(c.batch);
    for (int b = 0; b <= c.batch; ++b) qs[b] = b, pip[b] = b * pages_per_seq;
    for (int i = 0; i < num_pages; ++i) pidx[i] = (i * 7919) % num_pages;  // scattered pages
    for (int b = 0; b < c.batch; ++b) ts[b] = b;
    int32_t* meta = static_cast<int32_t*>(dalloc((4 * c.batch + 2 + num_pages) * 4 + 256));
    int32_t *d_qs = meta, *d_kl = d_qs + c.batch + 1, *d_pip = d_kl + c.batch, *d_ts = d_pip + c.batch + 1,
            *d_pidx = d_ts + c.batch;
    CK(cudaMemcpy(d_qs, qs.data(), qs.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_kl, kl.data(), kl.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_pip, pip.data(), pip.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_ts, ts.data(), ts.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d_pidx, pidx.data(), pidx.size() * 4, cudaMemcpyHostToDevice));
    __half* q = static_cast<__half*>(dalloc(static_cast<size_t>(c.batch) * c.heads * D * 2));
    __half* o = static_cast<__half*>(dalloc(static_cast<size_t>(c.batch) * c.heads * D * 2));
    fill_random_half<<<256, 256>>>(q, int64_t{c.batch} * c.heads * D, 13, -1, 1);
    CK(cudaDeviceSynchronize());
    // Same split policy as CudaBackend::attention.
    const int base_blocks = c.batch * c.kv_heads * (c.heads / c.kv_heads / (c.heads / c.kv_heads <= 8 ? c.heads / c.kv_heads : 8));
    int splits = 1;
    if (base_blocks < 2 * sms) splits = std::max(1, std::min({(2 * sms + base_blocks - 1) / base_blocks, (c.ctx + 127) / 128, 64}));
    const int split_size = splits > 1 ? ((c.ctx + splits - 1) / splits + 31) / 32 * 32 : 1 << 30;
    float* pout = static_cast<float*>(dalloc(static_cast<size_t>(c.batch) * c.heads * 64 * D * 4 + 64));
    float* pml = static_cast<float*>(dalloc(static_cast<size_t>(c.batch) * c.heads * 64 * 2 * 4 + 64));
    AttnKernelParams p{};
    p.q = q; p.k_cache = kc; p.v_cache = vc; p.out = o;
    p.query_start = d_qs; p.kv_len = d_kl; p.page_indptr = d_pip; p.page_indices = d_pidx; p.token_seq = d_ts;
    p.num_tokens = c.batch; p.num_seqs = c.batch; p.num_q_heads = c.heads; p.num_kv_heads = c.kv_heads;
    p.head_dim = D; p.page_size = ps; p.q_stride = int64_t{c.heads} * D; p.out_stride = p.q_stride;
    p.token_stride = int64_t{c.kv_heads} * D; p.page_stride = p.token_stride * ps; p.window = 0;
    p.scale = 0.0884f; p.num_splits = splits; p.split_size = split_size; p.partial_out = pout; p.partial_ml = pml;
    p.type = ElemType::kF16;
    p.variant = 1;
    const double ms_v1 = time_graph_ms([&](int) { launch_attention(p, st); }, reps);
    p.variant = 0;
    const double ms_stream = time_ms([&](int) { launch_attention(p, st); }, 3, reps);
    const double ms = time_graph_ms([&](int) { launch_attention(p, st); }, reps);
    std::printf("  [attention %s b=%d ctx=%d variant 1: graph %.1f us, %.0f GB/s]\n", c.model, c.batch, c.ctx, ms_v1 * 1e3,
                2.0 * c.batch * c.ctx * c.kv_heads * D * 2 / ms_v1 / 1e6);
    std::printf("  [attention %s b=%d ctx=%d: stream %.1f us, graph %.1f us]\n", c.model, c.batch, c.ctx, ms_stream * 1e3, ms * 1e3);
    const double bytes = 2.0 * c.batch * c.ctx * c.kv_heads * D * 2;
    std::printf("%-13s %5d %6d | %9.1f %9.0f %7.0f%%   (first kernel, splits %d)\n", c.model, c.batch, c.ctx, ms * 1000,
                bytes / ms / 1e6, 100 * bytes / ms / 1e6 / copy_gbs, splits);
    record("\"bench\": \"attention_decode_v0\", \"model\": \"" + std::string(c.model) + "\", \"batch\": " +
           std::to_string(c.batch) + ", \"ctx\": " + std::to_string(c.ctx) + ", \"us\": " + std::to_string(ms * 1000) +
           ", \"gbs\": " + std::to_string(bytes / ms / 1e6));
    // The decode kernel (attention_decode.cu, the default for decode batches):
    // split count from the context (known) and from the batch shape only (graph replay).
    for (int known : {1, 0}) {
      AttnKernelParams d = p;
      d.exact_group = true;  // as CudaBackendOptions defaults to
      d.num_splits = attention_decode_splits(c.batch, c.heads, c.kv_heads, known ? c.ctx : 0, sms);
      const double ms_d = time_graph_ms([&](int) { launch_attention_decode(d, st); }, reps);
      std::printf("%-13s %5d %6d | %9.1f %9.0f %7.0f%%   (decode kernel, splits %d%s)\n", c.model, c.batch, c.ctx,
                  ms_d * 1000, bytes / ms_d / 1e6, 100 * bytes / ms_d / 1e6 / copy_gbs, d.num_splits,
                  known ? "" : ", context unknown");
      record("\"bench\": \"attention_decode\", \"kernel\": \"decode\", \"context_known\": " + std::to_string(known) +
             ", \"model\": \"" + std::string(c.model) + "\", \"batch\": " + std::to_string(c.batch) +
             ", \"ctx\": " + std::to_string(c.ctx) + ", \"splits\": " + std::to_string(d.num_splits) +
             ", \"us\": " + std::to_string(ms_d * 1000) + ", \"gbs\": " + std::to_string(bytes / ms_d / 1e6));
    }
    for (void* ptr : {static_cast<void*>(kc), static_cast<void*>(vc), static_cast<void*>(meta), static_cast<void*>(q),
                      static_cast<void*>(o), static_cast<void*>(pout), static_cast<void*>(pml)})
      CK(cudaFree(ptr));
  }
  if (!profile) {
    bench_attention_prefill(reps);
    bench_sampling(reps);
  }
  return write_json(json_path, prop.name);
}
