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

  // gpu: the backend under test (default gpu_); tol: bound on ||out - ref|| / ||ref||.
  void check(const Case& c, Backend* gpu = nullptr, double tol = 3e-3) {
    Backend& g = gpu ? *gpu : *gpu_;
    const DType gt = g.activation_dtype();
    const int S = static_cast<int>(c.seqs.size());
    std::vector<int32_t> query_start = {0}, kv_len, page_indptr = {0}, page_indices;
    int total_pages = 0, max_q = 0, max_kv = 0;
    for (auto [n, L] : c.seqs) total_pages += (L + c.page_size - 1) / c.page_size;
    const int num_pages = total_pages + 3;
    std::vector<int32_t> ids(num_pages);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng_);
    int next = 0;
    for (auto [n, L] : c.seqs) {
      query_start.push_back(query_start.back() + n);
      kv_len.push_back(L);
      max_q = std::max(max_q, n);
      max_kv = std::max(max_kv, L);
      const int pages = (L + c.page_size - 1) / c.page_size;
      const int first_query = L - n;
      for (int p = 0; p < pages; ++p) {
        const int last_token = (p + 1) * c.page_size - 1;
        const bool outside = c.window > 0 && last_token <= first_query - c.window;
        page_indices.push_back(outside ? -1 : ids[next]);
        ++next;
      }
      page_indptr.push_back(static_cast<int32_t>(page_indices.size()));
    }
    const int T = query_start.back();
    const int64_t cache_elems = int64_t{num_pages} * c.page_size * c.kv_heads * c.dim;
    auto kc = random(cache_elems, -2, 2), vc = random(cache_elems, -2, 2);
    auto q = random(int64_t{T} * c.heads * c.dim, -2, 2);
    for (auto* v : {&kc, &vc, &q}) {
      for (float& x : *v) x = round_to(gt, x);  // both backends see the same values
    }
    auto run = [&](Backend& b, DType t) {
      auto kd = put(b, kc, t, {num_pages, c.page_size, c.kv_heads, c.dim});
      auto vd = put(b, vc, t, {num_pages, c.page_size, c.kv_heads, c.dim});
      auto qd = put(b, q, t, {T, c.heads, c.dim});
      auto od = out(b, t, {T, c.heads, c.dim});
      auto qs = put_i32(b, query_start, {S + 1});
      auto kl = put_i32(b, kv_len, {S});
      auto pi = put_i32(b, page_indptr, {S + 1});
      auto px = put_i32(b, page_indices, {static_cast<int64_t>(page_indices.size())});
      AttentionParams p;
      p.q = qd.view;
      p.out = od.view;
      p.cache = {kd.view, vd.view};
      p.pages.num_seqs = S;
      p.pages.num_tokens = T;
      p.pages.page_size = c.page_size;
      p.pages.query_start = qs.view.as<int32_t>();
      p.pages.kv_len = kl.view.as<int32_t>();
      p.pages.page_indptr = pi.view.as<int32_t>();
      p.pages.page_indices = px.view.as<int32_t>();
      p.pages.max_query_len = max_q;
      p.pages.max_kv_len = c.kv_hint ? max_kv : 0;
      p.num_heads = c.heads;
      p.num_kv_heads = c.kv_heads;
      p.head_dim = c.dim;
      p.scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
      p.sliding_window = c.window;
      b.attention(p);
      return get(b, od.view);
    };
    const auto ref = run(*cpu_, DType::kF32);
    const auto got = run(g, gt);
    std::string what = "heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " dim " +
                       std::to_string(c.dim) + " page " + std::to_string(c.page_size) + " window " +
                       std::to_string(c.window) + " seqs";
    for (auto [n, L] : c.seqs) what += " (" + std::to_string(n) + "," + std::to_string(L) + ")";
    EXPECT_LT(rel_err(got, ref), tol) << what << " (" << dtype_name(gt) << ")";
  }

  // A second CUDA backend with other options (prefill threshold, bf16).
  std::unique_ptr<Backend> make_gpu(int prefill_min_query, DType act_dtype = DType::kF16) {
    CudaBackendOptions o;
    o.memory_bytes = size_t{2} << 30;
    o.activation_dtype = act_dtype;
    o.attention_prefill_min_query = prefill_min_query;
    if (const char* v = std::getenv("TANDEM_CUDA_KERNEL_VARIANT")) o.kernel_variant = std::atoi(v);
    auto g = make_cuda_backend(o);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? std::move(g).value() : nullptr;
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
