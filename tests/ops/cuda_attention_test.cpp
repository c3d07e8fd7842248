// CUDA vs CPU: KV page writes, page copies and paged attention over mixed
// batches (decodes, prefill chunks against cached pages, full prefills), GQA
// ratios, head dims 64/128, page sizes, sliding windows (with pages outside the
// window freed as -1), and contexts long enough to take the split-K path.
#include <algorithm>
#include <numeric>

#include "ops/op_test_util.h"

namespace tandem::optest {
namespace {

class CudaAttention : public OpTest {
 protected:
  struct Case {
    int heads, kv_heads, dim, page_size, window;
    std::vector<std::pair<int, int>> seqs;  // (query tokens this step, kv_len after the step)
    bool kv_hint = true;  // false: max_kv_len = 0 (unknown), as in a captured decode graph
  };

  // Page tables for a case: each sequence's pages drawn from a shuffled pool
  // (pages wholly outside a sliding window are -1).
  struct Layout {
    std::vector<int32_t> query_start{0}, kv_len, page_indptr{0}, page_indices;
    int num_pages = 0, T = 0, max_q = 0, max_kv = 0;
  };
  Layout layout(const Case& c) {
    Layout y;
    int total_pages = 0;
    for (auto [n, L] : c.seqs) total_pages += (L + c.page_size - 1) / c.page_size;
    y.num_pages = total_pages + 3;
    std::vector<int32_t> ids(y.num_pages);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng_);
    int next = 0;
    for (auto [n, L] : c.seqs) {
      y.query_start.push_back(y.query_start.back() + n);
      y.kv_len.push_back(L);
      y.max_q = std::max(y.max_q, n);
      y.max_kv = std::max(y.max_kv, L);
      const int pages = (L + c.page_size - 1) / c.page_size;
      const int first_query = L - n;
      for (int p = 0; p < pages; ++p) {
        const int last_token = (p + 1) * c.page_size - 1;
        const bool outside = c.window > 0 && last_token <= first_query - c.window;
        y.page_indices.push_back(outside ? -1 : ids[next]);
        ++next;
      }
      y.page_indptr.push_back(static_cast<int32_t>(y.page_indices.size()));
    }
    y.T = y.query_start.back();
    return y;
  }

  // The page-table tensors of a layout on one backend, kept alive with the params.
  struct PagesOn {
    DeviceTensor qs, kl, pi, px;
  };
  AttentionParams params(const Case& c, const Layout& y, Backend& b, PagesOn* keep, const TensorView& q,
                         const TensorView& out, const KvCacheView& cache) {
    const int S = static_cast<int>(c.seqs.size());
    keep->qs = put_i32(b, y.query_start, {S + 1});
    keep->kl = put_i32(b, y.kv_len, {S});
    keep->pi = put_i32(b, y.page_indptr, {S + 1});
    keep->px = put_i32(b, y.page_indices, {static_cast<int64_t>(y.page_indices.size())});
    AttentionParams p;
    p.q = q;
    p.out = out;
    p.cache = cache;
    p.pages.num_seqs = S;
    p.pages.num_tokens = y.T;
    p.pages.page_size = c.page_size;
    p.pages.query_start = keep->qs.view.as<int32_t>();
    p.pages.kv_len = keep->kl.view.as<int32_t>();
    p.pages.page_indptr = keep->pi.view.as<int32_t>();
    p.pages.page_indices = keep->px.view.as<int32_t>();
    p.pages.max_query_len = y.max_q;
    p.pages.max_kv_len = c.kv_hint ? y.max_kv : 0;
    p.num_heads = c.heads;
    p.num_kv_heads = c.kv_heads;
    p.head_dim = c.dim;
    p.scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
    p.sliding_window = c.window;
    return p;
  }

  static std::string describe(const Case& c) {
    std::string what = "heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " dim " +
                       std::to_string(c.dim) + " page " + std::to_string(c.page_size) + " window " +
                       std::to_string(c.window) + " seqs";
    for (auto [n, L] : c.seqs) what += " (" + std::to_string(n) + "," + std::to_string(L) + ")";
    return what;
  }

  // gpu: the backend under test (default gpu_); tol: bound on ||out - ref|| / ||ref||.
  void check(const Case& c, Backend* gpu = nullptr, double tol = 3e-3) {
    Backend& g = gpu ? *gpu : *gpu_;
    const DType gt = g.activation_dtype();
    const Layout y = layout(c);
    const int64_t cache_elems = int64_t{y.num_pages} * c.page_size * c.kv_heads * c.dim;
    auto kc = random(cache_elems, -2, 2), vc = random(cache_elems, -2, 2);
    auto q = random(int64_t{y.T} * c.heads * c.dim, -2, 2);
    for (auto* v : {&kc, &vc, &q}) {
      for (float& x : *v) x = round_to(gt, x);  // both backends see the same values
    }
    auto run = [&](Backend& b, DType t) {
      auto kd = put(b, kc, t, {y.num_pages, c.page_size, c.kv_heads, c.dim});
      auto vd = put(b, vc, t, {y.num_pages, c.page_size, c.kv_heads, c.dim});
      auto qd = put(b, q, t, {y.T, c.heads, c.dim});
      auto od = out(b, t, {y.T, c.heads, c.dim});
      PagesOn keep;
      b.attention(params(c, y, b, &keep, qd.view, od.view, {kd.view, vd.view}));
      return get(b, od.view);
    };
    const auto ref = run(*cpu_, DType::kF32);
    const auto got = run(g, gt);
    EXPECT_LT(rel_err(got, ref), tol) << describe(c) << " (" << dtype_name(gt) << ")";
  }

  // A decode step through rope_kv_attention: each sequence's new token (the
  // last of its kv_len) has unrotated q, k, v; the backend rotates them, writes
  // K and V to the token's slot and attends. Checks the output and both caches
  // against the CPU, and against the unfused GPU path when `unfused` is given.
  // under_test: the backend checked (default gpu_).
  void check_rope_decode(const Case& c, int rot, Backend* unfused, Backend* under_test = nullptr) {
    const Layout y = layout(c);
    const int S = static_cast<int>(c.seqs.size());
    const int64_t cache_elems = int64_t{y.num_pages} * c.page_size * c.kv_heads * c.dim;
    auto kc = random(cache_elems, -2, 2), vc = random(cache_elems, -2, 2);
    auto q = random(int64_t{y.T} * c.heads * c.dim, -2, 2);
    auto k = random(int64_t{y.T} * c.kv_heads * c.dim, -2, 2);
    auto v = random(int64_t{y.T} * c.kv_heads * c.dim, -2, 2);
    std::vector<int32_t> slots(y.T), pos(y.T);
    for (int s = 0; s < S; ++s) {
      const int key = y.kv_len[s] - 1;
      const int page = y.page_indices[y.page_indptr[s] + key / c.page_size];
      slots[s] = page * c.page_size + key % c.page_size;
      pos[s] = key;
    }
    std::vector<float> inv(rot / 2);
    for (int i = 0; i < rot / 2; ++i) inv[i] = static_cast<float>(1.0 / std::pow(1e4, 2.0 * i / rot));
    auto run = [&](Backend& b, DType t) {
      auto kd = put(b, kc, t, {y.num_pages, c.page_size, c.kv_heads, c.dim});
      auto vd = put(b, vc, t, {y.num_pages, c.page_size, c.kv_heads, c.dim});
      auto qd = put(b, q, t, {y.T, c.heads, c.dim});
      auto kn = put(b, k, t, {y.T, c.kv_heads, c.dim});
      auto vn = put(b, v, t, {y.T, c.kv_heads, c.dim});
      auto sl = put_i32(b, slots, {y.T});
      auto pd = put_i32(b, pos, {y.T});
      auto fd = put(b, inv, DType::kF32, {rot / 2});
      auto od = out(b, t, {y.T, c.heads, c.dim});
      PagesOn keep;
      const AttentionParams ap = params(c, y, b, &keep, qd.view, od.view, {kd.view, vd.view});
      b.rope_kv_attention(rope_params(qd.view, kn.view, pd.view, fd.view, rot), vn.view, sl.view, ap);
      return std::vector{get(b, od.view), get(b, kd.view), get(b, vd.view)};
    };
    const auto ref = run(*cpu_, DType::kF32);
    const auto got = run(under_test ? *under_test : *gpu_, act());
    const char* names[] = {"out", "k cache", "v cache"};
    for (int i = 0; i < 3; ++i) EXPECT_LT(rel_err(got[i], ref[i]), 3e-3) << names[i] << " rot " << rot << " " << describe(c);
    if (unfused == nullptr) return;
    const auto sep = run(*unfused, act());
    for (int i = 0; i < 3; ++i)
      EXPECT_LT(rel_err(got[i], sep[i]), 1e-3) << names[i] << " vs unfused, rot " << rot << " " << describe(c);
  }

  // A second CUDA backend with other options (prefill threshold, bf16).
  std::unique_ptr<Backend> make_gpu(int prefill_min_query, DType act_dtype = DType::kF16) {
    CudaBackendOptions o;
    o.activation_dtype = act_dtype;
    o.attention_prefill_min_query = prefill_min_query;
    return make_gpu(o);
  }
  // ... or with any options (2 GiB, the kernel variant gpu-check asks for).
  std::unique_ptr<Backend> make_gpu(CudaBackendOptions o) {
    o.memory_bytes = size_t{2} << 30;
    if (const char* v = std::getenv("TANDEM_CUDA_KERNEL_VARIANT")) o.kernel_variant = std::atoi(v);
    auto g = make_cuda_backend(o);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? std::move(g).value() : nullptr;
  }

  // The decode cases both split merges run on one backend: short and long
  // contexts, partial pages, two head groups per kv head, head dims 32-128, a window.
  void check_decode_merge_cases(Backend* gpu) {
    check({32, 8, 128, 16, 0, {{1, 17}, {1, 512}, {1, 33}}}, gpu);
    check({56, 8, 128, 16, 0, {{1, 3000}}}, gpu);
    check({56, 8, 128, 16, 0, {{1, 5}, {1, 300}, {1, 129}}, false}, gpu);
    check({16, 1, 64, 8, 0, {{1, 1000}, {1, 7}}}, gpu);  // two head groups per kv head
    check({4, 2, 32, 16, 0, {{1, 1}, {1, 40}, {1, 700}}}, gpu);
    check({32, 8, 128, 16, 48, {{1, 1000}, {1, 40}}, false}, gpu);
  }

  // Those cases and a fused-RoPE decode on a backend made with `o`: a decode
  // switch's other path.
  void check_decode_paths_with(const CudaBackendOptions& o) {
    auto g = make_gpu(o);
    ASSERT_TRUE(g);
    check_decode_merge_cases(g.get());
    check_rope_decode({32, 8, 128, 16, 0, {{1, 17}, {1, 514}, {1, 33}}}, 128, nullptr, g.get());
  }
};

TEST_F(CudaAttention, Decode) {
  check({32, 8, 128, 16, 0, {{1, 1}}});
  check({32, 8, 128, 16, 0, {{1, 17}, {1, 512}, {1, 33}}});
  check({56, 8, 128, 16, 0, {{1, 3000}}});  // split-K, GQA 7
  check({8, 8, 64, 32, 0, {{1, 64}, {1, 65}, {1, 2}}});
  check({16, 1, 64, 8, 0, {{1, 1000}, {1, 7}}});  // GQA 16 (two groups of 8 per kv head)
  check({28, 4, 128, 16, 0, {{1, 4096}, {1, 4097}}});
  check({4, 2, 32, 16, 0, {{1, 1}, {1, 40}, {1, 700}}});  // dim 32 (the tiny fixture models)
  // Unknown longest context (graph replay): the split count follows the batch shape only.
  check({32, 8, 128, 16, 0, {{1, 1}}, false});
  check({32, 8, 128, 16, 0, {{1, 577}}, false});
  check({56, 8, 128, 16, 0, {{1, 5}, {1, 300}, {1, 129}}, false});
  check({8, 2, 64, 16, 0, {{1, 9000}}, false});
  check({32, 8, 128, 16, 48, {{1, 1000}, {1, 40}}, false});
}

// The decode kernel's splits merged by the last split block (the default,
// CudaBackendOptions::attention_fused_combine) on one backend: each merging
// block resets its counter, which the later calls need; then the same cases
// with the separate combine kernel and without the early loads.
TEST_F(CudaAttention, DecodeFusedCombine) {
  CudaBackendOptions o;
  o.attention_fused_combine = true;
  auto g = make_gpu(o);
  ASSERT_TRUE(g);
  check_decode_merge_cases(g.get());
  check({8, 2, 64, 16, 0, {{1, 9000}}, false}, g.get());
  check({32, 8, 128, 16, 0, {{1, 577}}, false}, g.get());
}

TEST_F(CudaAttention, DecodeCombineKernelWithoutEarlyLoads) {
  CudaBackendOptions o;
  o.attention_fused_combine = false;
  o.attention_early_loads = false;
  check_decode_paths_with(o);
}

// The decode kernel's block holding the new token reloading its K/V row from
// L2 and the merge loading 8 partials at a time (CudaBackendOptions::
// attention_lean_tail off; on, the default, every other test takes).
TEST_F(CudaAttention, DecodeWithoutLeanTail) {
  CudaBackendOptions o;
  o.attention_lean_tail = false;
  check_decode_paths_with(o);
}

// The general decode kernel (query heads per block known only at run time) at
// the GQA ratios the exact-group kernels take by default: 4, 7 and 8 (16).
TEST_F(CudaAttention, DecodeGeneralGroupKernel) {
  CudaBackendOptions o;
  o.attention_exact_group = false;
  auto g = make_gpu(o);
  ASSERT_TRUE(g);
  check({32, 8, 128, 16, 0, {{1, 17}, {1, 512}, {1, 33}}}, g.get());
  check({56, 8, 128, 16, 0, {{1, 5}, {1, 300}, {1, 129}}, false}, g.get());
  check({16, 1, 64, 8, 0, {{1, 1000}, {1, 7}}}, g.get());
  check_rope_decode({32, 8, 128, 16, 0, {{1, 17}, {1, 514}, {1, 33}}}, 128, nullptr, g.get());
}

TEST_F(CudaAttention, PrefillAndChunks) {
  check({32, 8, 128, 16, 0, {{37, 37}}});
  check({8, 2, 64, 16, 0, {{100, 100}, {1, 50}, {20, 300}}});  // mixed: prefill, decode, chunk on cache
  check({56, 8, 128, 32, 0, {{129, 129}, {64, 200}}});
  check({4, 4, 128, 1, 0, {{9, 9}, {3, 12}}});  // one token per page
  check({4, 2, 32, 16, 0, {{12, 12}, {1, 30}, {5, 90}}});
}

// The tensor-core prefill kernel (attention_prefill.cu) takes sequences of >= 16
// query tokens by default: odd lengths around the 64-row tile and 64-key tile
// edges, partial last pages, GQA 1..16, chunks against cached pages, windows with
// freed pages, and mixed batches where shorter sequences stay on the CUDA-core path.
TEST_F(CudaAttention, PrefillTensorCores) {
  check({32, 8, 128, 16, 0, {{16, 16}}});
  check({32, 8, 128, 16, 0, {{64, 64}, {65, 65}, {63, 63}}});
  check({32, 8, 128, 16, 0, {{300, 300}}});
  check({56, 8, 128, 16, 0, {{257, 257}, {1, 90}, {15, 400}}});  // GQA 7 + decode + short chunk
  check({8, 8, 64, 8, 0, {{129, 129}, {17, 17}}});                  // MHA, dim 64
  check({16, 1, 64, 32, 0, {{77, 77}}});                             // GQA 16
  check({12, 4, 128, 1, 0, {{33, 33}, {40, 81}}});                   // one token per page
  check({8, 2, 128, 3, 0, {{50, 50}, {66, 199}}});                   // odd page size
  check({8, 2, 64, 64, 0, {{200, 200}, {70, 301}}});                 // pages larger than the tiles
  check({32, 8, 128, 16, 0, {{100, 612}, {128, 1000}, {16, 2049}}}); // chunks against cached pages
  check({8, 2, 64, 16, 0, {{511, 511}}});
  check({4, 2, 32, 16, 0, {{65, 65}, {100, 233}}});                  // dim 32
  check({4, 4, 32, 8, 30, {{90, 90}}});                              // dim 32, window
}

TEST_F(CudaAttention, PrefillTensorCoresWindow) {
  check({32, 8, 128, 16, 64, {{200, 200}}});
  check({8, 2, 64, 16, 40, {{120, 120}, {30, 500}, {1, 2000}}});
  check({32, 8, 128, 16, 100, {{150, 1000}, {64, 64}, {17, 333}}});
  check({8, 4, 128, 8, 1, {{70, 70}}});      // window 1: each token sees only itself
  check({8, 2, 128, 32, 4096, {{300, 4400}}});  // window longer than the chunk
  check({8, 2, 64, 1, 63, {{130, 400}}});
}

// Random shapes, and every sequence (decodes too) on the tensor-core kernel.
TEST_F(CudaAttention, PrefillTensorCoresRandomShapes) {
  auto all_tc = make_gpu(1);
  ASSERT_TRUE(all_tc);
  check({32, 8, 128, 16, 0, {{1, 1}, {1, 300}, {2, 2}, {5, 77}, {40, 40}}}, all_tc.get());
  check({8, 2, 64, 16, 32, {{1, 500}, {3, 3}, {100, 260}}}, all_tc.get());
  const int ratios[] = {1, 2, 4, 7, 8, 16};
  const int page_sizes[] = {1, 2, 7, 8, 16, 32, 48};
  for (int iter = 0; iter < 12; ++iter) {
    const int ratio = ratios[rand_int(0, 5)];
    const int kv_heads = ratio >= 7 ? rand_int(1, 2) : rand_int(1, 4);
    const int dims[] = {32, 64, 128};
    const int dim = dims[rand_int(0, 2)];
    const int page = page_sizes[rand_int(0, 6)];
    const int window = rand_int(0, 2) == 0 ? rand_int(1, 300) : 0;
    Case c{ratio * kv_heads, kv_heads, dim, page, window, {}};
    const int S = rand_int(1, 4);
    for (int i = 0; i < S; ++i) {
      const int n = rand_int(0, 3) == 0 ? rand_int(1, 20) : rand_int(16, 200);
      c.seqs.push_back({n, n + (rand_int(0, 1) ? 0 : rand_int(1, 500))});
    }
    check(c, iter % 2 ? all_tc.get() : nullptr);
  }
}

// bf16 activations on the tensor-core kernel (P rounds to bf16: a looser bound).
TEST_F(CudaAttention, PrefillTensorCoresBf16) {
  auto bf = make_gpu(16, DType::kBF16);
  ASSERT_TRUE(bf);
  check({32, 8, 128, 16, 0, {{130, 130}, {1, 70}}}, bf.get(), 1e-2);
  check({8, 2, 64, 8, 50, {{90, 300}}}, bf.get(), 1e-2);
  check({4, 2, 32, 16, 0, {{70, 70}, {1, 33}}}, bf.get(), 1e-2);
}

TEST_F(CudaAttention, SlidingWindow) {
  check({32, 8, 128, 16, 64, {{1, 1000}, {1, 65}, {1, 64}, {1, 63}}});
  check({8, 2, 64, 16, 40, {{120, 120}, {30, 500}, {1, 2000}}});
  check({32, 8, 128, 16, 4096, {{1, 5000}, {200, 4300}}});
}

TEST_F(CudaAttention, WriteKvAndCopyPages) {
  for (auto [kv_heads, dim, page_size] : {std::tuple{8, 128, 16}, {2, 64, 1}, {1, 64, 32}, {2, 32, 16}}) {
    const int T = 37, num_pages = std::max(24, (T + page_size - 1) / page_size + 8);  // distinct slots for all T
    const int64_t cache_elems = int64_t{num_pages} * page_size * kv_heads * dim;
    auto kc = random(cache_elems), vc = random(cache_elems);
    auto k = random(int64_t{T} * kv_heads * dim), v = random(int64_t{T} * kv_heads * dim);
    std::vector<int32_t> slots(num_pages * page_size);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng_);
    slots.resize(T);
    slots[3] = -1;  // skipped
    const std::vector<std::pair<int32_t, int32_t>> copies = {{0, 5}, {7, 1}, {num_pages - 1, num_pages - 2}};
    auto run = [&](Backend& b, DType t) {
      auto kd = put(b, kc, t, {num_pages, page_size, kv_heads, dim});
      auto vd = put(b, vc, t, {num_pages, page_size, kv_heads, dim});
      auto kn = put(b, k, t, {T, kv_heads, dim});
      auto vn = put(b, v, t, {T, kv_heads, dim});
      auto sl = put_i32(b, slots, {T});
      KvCacheView cache{kd.view, vd.view};
      b.write_kv(kn.view, vn.view, sl.view, cache);
      b.copy_kv_pages(cache, copies);
      return std::pair{get(b, kd.view), get(b, vd.view)};
    };
    auto [kr, vr] = run(*cpu_, DType::kF32);
    auto [kg, vg] = run(*gpu_, act());
    EXPECT_EQ(rel_err(kg, kr), 0.0) << kv_heads << " " << dim << " " << page_size;
    EXPECT_EQ(rel_err(vg, vr), 0.0);
  }
}

// RoPE fused with the cache write (one kernel on CUDA) equals rope then
// write_kv on the CPU: q and k rotated in place, the cache holding rotated K
// and V at each slot, skipped slots untouched; partial rotary dims too.
TEST_F(CudaAttention, RopeWriteKv) {
  struct Case { int tokens, heads, kv_heads, dim, rot, page_size; };
  for (auto c : {Case{1, 32, 8, 128, 128, 16}, Case{9, 8, 2, 64, 64, 1}, Case{5, 4, 2, 32, 32, 16},
                 Case{6, 4, 4, 64, 32, 8}}) {
    const int num_pages = std::max(8, c.tokens);  // a distinct slot for every token
    const int64_t cache_elems = int64_t{num_pages} * c.page_size * c.kv_heads * c.dim;
    auto kc = random(cache_elems), vc = random(cache_elems);
    auto q = random(int64_t{c.tokens} * c.heads * c.dim, -2, 2);
    auto k = random(int64_t{c.tokens} * c.kv_heads * c.dim, -2, 2);
    auto v = random(int64_t{c.tokens} * c.kv_heads * c.dim, -2, 2);
    std::vector<int32_t> slots(num_pages * c.page_size), pos(c.tokens);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng_);
    slots.resize(c.tokens);
    if (c.tokens > 2) slots[1] = -1;
    for (auto& x : pos) x = rand_int(0, 5000);
    std::vector<float> inv(c.rot / 2);
    for (int i = 0; i < c.rot / 2; ++i) inv[i] = static_cast<float>(1.0 / std::pow(1e4, 2.0 * i / c.rot));
    auto run = [&](Backend& b, DType t) {
      auto kd = put(b, kc, t, {num_pages, c.page_size, c.kv_heads, c.dim});
      auto vd = put(b, vc, t, {num_pages, c.page_size, c.kv_heads, c.dim});
      auto qn = put(b, q, t, {c.tokens, c.heads, c.dim});
      auto kn = put(b, k, t, {c.tokens, c.kv_heads, c.dim});
      auto vn = put(b, v, t, {c.tokens, c.kv_heads, c.dim});
      auto sl = put_i32(b, slots, {c.tokens});
      auto pd = put_i32(b, pos, {c.tokens});
      auto fd = put(b, inv, DType::kF32, {c.rot / 2});
      b.rope_write_kv(rope_params(qn.view, kn.view, pd.view, fd.view, c.rot), vn.view, sl.view,
                      KvCacheView{kd.view, vd.view});
      return std::vector{get(b, qn.view), get(b, kn.view), get(b, kd.view), get(b, vd.view)};
    };
    const auto ref = run(*cpu_, DType::kF32);
    const auto got = run(*gpu_, act());
    const char* names[] = {"q", "k", "k cache", "v cache"};
    for (int i = 0; i < 4; ++i) {
      EXPECT_LT(rel_err(got[i], ref[i]), 2e-3) << names[i] << ": tokens " << c.tokens << " dim " << c.dim << " rot "
                                               << c.rot << " page " << c.page_size;
    }
  }
}

// RoPE and the new token's KV write fused into the decode attention kernel
// (Backend::rope_kv_attention on CUDA decode steps): GQA with one and with two
// head groups per kv head (both write the new row), head dims 32/64/128,
// partial rotary dims, a sliding window, the split path with an unknown longest
// context (graph replay), a new token first in its page.
TEST_F(CudaAttention, RopeKvAttentionDecode) {
  CudaBackendOptions o;
  o.attention_fused_rope = false;
  auto sep = make_gpu(o);
  ASSERT_TRUE(sep);
  Backend* unfused = sep.get();
  check_rope_decode({32, 8, 128, 16, 0, {{1, 1}}}, 128, unfused);
  check_rope_decode({32, 8, 128, 16, 0, {{1, 17}, {1, 514}, {1, 33}}}, 128, unfused);
  check_rope_decode({56, 8, 128, 16, 0, {{1, 3000}, {1, 129}}, false}, 128, unfused);
  check_rope_decode({16, 1, 64, 8, 0, {{1, 1000}, {1, 7}}}, 64, unfused);  // two groups per kv head
  check_rope_decode({8, 8, 64, 32, 0, {{1, 64}, {1, 65}}}, 32, unfused);   // partial rotary
  check_rope_decode({4, 2, 32, 16, 0, {{1, 40}, {1, 700}}, false}, 32, unfused);
  check_rope_decode({32, 8, 128, 16, 48, {{1, 1000}, {1, 40}}, false}, 128, unfused);
}

// Early loads (CudaBackendOptions::attention_early_loads, the default): metadata
// and the first K/V tile read before the wait for the kernel before; the new
// token's row, written after those loads (by the kernel itself with fused
// RoPE, by the RoPE + KV-write kernel without), must still be the one attended.
TEST_F(CudaAttention, DecodeEarlyLoads) {
  CudaBackendOptions o;
  o.attention_early_loads = true;
  auto early = make_gpu(o);
  o.attention_fused_rope = false;
  auto early_unfused = make_gpu(o);
  ASSERT_TRUE(early && early_unfused);
  check({32, 8, 128, 16, 0, {{1, 1}, {1, 17}, {1, 512}, {1, 33}}}, early.get());
  check({56, 8, 128, 16, 0, {{1, 5}, {1, 300}, {1, 129}}, false}, early.get());
  check({16, 1, 64, 8, 0, {{1, 1000}, {1, 7}}}, early.get());
  check({32, 8, 128, 16, 48, {{1, 1000}, {1, 40}}, false}, early.get());
  for (Backend* b : {early.get(), early_unfused.get()}) {
    check_rope_decode({32, 8, 128, 16, 0, {{1, 1}}}, 128, nullptr, b);
    check_rope_decode({32, 8, 128, 16, 0, {{1, 17}, {1, 514}, {1, 33}}}, 128, nullptr, b);
    check_rope_decode({56, 8, 128, 16, 0, {{1, 3000}, {1, 129}}, false}, 128, nullptr, b);
    check_rope_decode({16, 1, 64, 8, 0, {{1, 1000}, {1, 7}}}, 64, nullptr, b);
    check_rope_decode({4, 2, 32, 16, 0, {{1, 40}, {1, 700}}, false}, 32, nullptr, b);
    check_rope_decode({8, 2, 64, 16, 0, {{1, 9000}}, false}, 64, nullptr, b);  // new key past the first tile
  }
}

// A model whose head size no kernel is built for is refused at load, by name.
TEST_F(CudaAttention, OtherHeadDimsAreRefused) {
  auto g = make_gpu(16);
  ASSERT_TRUE(g);
  for (int dim : {32, 64, 128}) EXPECT_TRUE(g->check_head_dim(dim).ok()) << dim;
  const Status st = g->check_head_dim(96);
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("head_dim 96"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace tandem::optest
