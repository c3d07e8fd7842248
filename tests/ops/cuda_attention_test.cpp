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

  void check(const Case& c) {
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
    const auto got = run(*gpu_, act());
    std::string what = "heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " dim " +
                       std::to_string(c.dim) + " page " + std::to_string(c.page_size) + " window " +
                       std::to_string(c.window) + " seqs";
    for (auto [n, L] : c.seqs) what += " (" + std::to_string(n) + "," + std::to_string(L) + ")";
    EXPECT_LT(rel_err(got, ref), 3e-3) << what;
  }
};

TEST_F(CudaAttention, Decode) {
  check({32, 8, 128, 16, 0, {{1, 1}}});
  check({32, 8, 128, 16, 0, {{1, 17}, {1, 512}, {1, 33}}});
  check({56, 8, 128, 16, 0, {{1, 3000}}});  // split-K, GQA 7
  check({8, 8, 64, 32, 0, {{1, 64}, {1, 65}, {1, 2}}});
  check({16, 1, 64, 8, 0, {{1, 1000}, {1, 7}}});  // GQA 16 (two groups of 8 per kv head)
  check({28, 4, 128, 16, 0, {{1, 4096}, {1, 4097}}});
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
}

TEST_F(CudaAttention, SlidingWindow) {
  check({32, 8, 128, 16, 64, {{1, 1000}, {1, 65}, {1, 64}, {1, 63}}});
  check({8, 2, 64, 16, 40, {{120, 120}, {30, 500}, {1, 2000}}});
  check({32, 8, 128, 16, 4096, {{1, 5000}, {200, 4300}}});
}

TEST_F(CudaAttention, WriteKvAndCopyPages) {
  for (auto [kv_heads, dim, page_size] : {std::tuple{8, 128, 16}, {2, 64, 1}, {1, 64, 32}}) {
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

}  // namespace
}  // namespace tandem::optest
