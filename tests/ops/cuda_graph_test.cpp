// Backend graphs (CUDA graphs): a decode attention step captured once and
// replayed after the metadata and inputs in the same buffers changed gives the
// CPU result of each step; a capture that needs new scratch memory fails
// cleanly, and a graph whose scratch moved refuses to replay. Step priority
// (two streams): order holds across switches, graphs replay at either.
#include <algorithm>
#include <numeric>

#include "ops/op_test_util.h"

namespace tandem::optest {
namespace {

class CudaGraph : public OpTest {};

TEST_F(CudaGraph, DecodeAttentionReplaysWithNewMetadata) {
  const int H = 32, KH = 8, D = 128, ps = 16, S = 3, max_pages_per_seq = 40;
  const int num_pages = S * max_pages_per_seq;
  const int64_t cache_elems = int64_t{num_pages} * ps * KH * D;
  auto kc = random(cache_elems, -2, 2), vc = random(cache_elems, -2, 2);
  std::vector<int32_t> ids(num_pages);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng_);
  // Fixed-capacity metadata image: [query_start S+1 | kv_len S | page_indptr S+1 | page_indices].
  const int64_t cap = 3 * S + 2 + num_pages;
  auto image = [&](const std::vector<int>& lens) {
    std::vector<int32_t> m(cap, 0);
    int np = 0;
    for (int s = 0; s < S; ++s) {
      m[s + 1] = s + 1;
      m[S + 1 + s] = lens[s];
      const int pages = (lens[s] + ps - 1) / ps;
      for (int p = 0; p < pages; ++p) m[3 * S + 2 + np + p] = ids[s * max_pages_per_seq + p];
      np += pages;
      m[2 * S + 1 + s + 1] = np;
    }
    return m;
  };
  auto params = [&](Backend& b, const DeviceTensor& q, const DeviceTensor& o, const DeviceTensor& k,
                    const DeviceTensor& v, const DeviceTensor& meta, int max_kv) {
    const int32_t* m = meta.view.as<int32_t>();
    AttentionParams p;
    p.q = q.view;
    p.out = o.view;
    p.cache = {k.view, v.view};
    p.pages.num_seqs = S;
    p.pages.num_tokens = S;
    p.pages.page_size = ps;
    p.pages.query_start = m;
    p.pages.kv_len = m + S + 1;
    p.pages.page_indptr = m + 2 * S + 1;
    p.pages.page_indices = m + 3 * S + 2;
    p.pages.max_query_len = 1;
    p.pages.max_kv_len = max_kv;
    p.num_heads = H;
    p.num_kv_heads = KH;
    p.head_dim = D;
    p.scale = 1.0f / std::sqrt(static_cast<float>(D));
    (void)b;
    return p;
  };
  auto cpu_step = [&](const std::vector<float>& q, const std::vector<int>& lens) {
    auto k = put(*cpu_, kc, DType::kF32, {num_pages, ps, KH, D});
    auto v = put(*cpu_, vc, DType::kF32, {num_pages, ps, KH, D});
    auto qd = put(*cpu_, q, DType::kF32, {S, H, D});
    auto o = out(*cpu_, DType::kF32, {S, H, D});
    auto meta = put_i32(*cpu_, image(lens), {cap});
    cpu_->attention(params(*cpu_, qd, o, k, v, meta, *std::max_element(lens.begin(), lens.end())));
    return get(*cpu_, o.view);
  };

  ASSERT_TRUE(gpu_->supports_graphs());
  auto k = put(*gpu_, kc, act(), {num_pages, ps, KH, D});
  auto v = put(*gpu_, vc, act(), {num_pages, ps, KH, D});
  auto qd = out(*gpu_, act(), {S, H, D});
  auto o = out(*gpu_, act(), {S, H, D});
  auto meta = put_i32(*gpu_, std::vector<int32_t>(cap, 0), {cap});
  const AttentionParams p = params(*gpu_, qd, o, k, v, meta, 0);
  auto set_step = [&](const std::vector<float>& q, const std::vector<int>& lens) {
    std::vector<uint8_t> raw(qd.view.nbytes());
    for (size_t i = 0; i < q.size(); ++i) store_from_f32(raw.data(), act(), static_cast<int64_t>(i), q[i]);
    gpu_->copy_host_to_device(qd.view.data, raw.data(), raw.size());
    const auto m = image(lens);
    gpu_->copy_host_to_device(meta.view.data, m.data(), m.size() * 4);
  };

  // A fresh backend has no scratch: capturing the split-K attention needs some,
  // so the capture fails (nothing ran) instead of recording a stale address.
  ASSERT_TRUE(gpu_->begin_capture().ok());
  gpu_->attention(p);
  auto failed = gpu_->end_capture();
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition) << failed.status().to_string();

  // Run once directly (sizes the scratch), then capture and replay.
  const std::vector<int> lens_a = {1, 300, 37};
  auto qa = random(int64_t{S} * H * D, -2, 2);
  set_step(qa, lens_a);
  gpu_->attention(p);
  EXPECT_LT(rel_err(get(*gpu_, o.view), cpu_step(qa, lens_a)), 3e-3);
  ASSERT_TRUE(gpu_->begin_capture().ok());
  gpu_->attention(p);
  auto graph = gpu_->end_capture();
  ASSERT_TRUE(graph.ok()) << graph.status().to_string();
  for (const auto& lens : {lens_a, std::vector<int>{2, 301, 38}, std::vector<int>{640, 17, 129}}) {
    auto q = random(int64_t{S} * H * D, -2, 2);
    set_step(q, lens);
    // Poison the output: the replay must write all of it.
    std::vector<float> nan(o.view.numel(), std::nanf(""));
    auto poison = put(*gpu_, nan, act(), {S, H, D});
    gpu_->copy_device_to_device(o.view.data, poison.view.data, o.view.nbytes());
    ASSERT_TRUE(gpu_->replay(**graph));
    EXPECT_LT(rel_err(get(*gpu_, o.view), cpu_step(q, lens)), 3e-3) << lens[0] << " " << lens[1] << " " << lens[2];
  }

  // Grow the scratch (an F32-table embedding into F16 stages 8 MiB there, more
  // than the 4 MiB it holds now): the graph is out of date and says so.
  const int rows = 1024, width = 2048;
  auto table = put(*gpu_, random(16 * width), DType::kF32, {16, width});
  std::vector<int32_t> tok(rows);
  for (int i = 0; i < rows; ++i) tok[i] = i % 16;
  auto tok_d = put_i32(*gpu_, tok, {rows});
  auto emb = out(*gpu_, act(), {rows, width});
  gpu_->embedding(table.view, tok_d.view, emb.view);
  gpu_->synchronize();
  EXPECT_FALSE(gpu_->replay(**graph));
}

class CudaStepPriority : public OpTest {};

// Backend::set_step_priority switches streams: a chain of ops, each reading
// the previous one's output, gives the same bits whether the priority flips
// before every op or never, and the CPU's result; a switch asked for while
// capturing is ignored, and a graph captured on the high-priority stream
// replays on the low one.
TEST_F(CudaStepPriority, OrderHoldsAcrossSwitchesAndGraphsReplayAtEither) {
  const int T = 512, hidden = 4096, kOps = 8;
  const auto x0 = random(int64_t{T} * hidden, -2, 2);
  const auto w = random(hidden, 0.5f, 1.5f);
  // residual += x; x = rms_norm(residual) * w, kOps times.
  auto chain = [&](Backend& b, DType dtype, bool flip) {
    auto x = put(b, x0, dtype, {T, hidden});
    auto residual = put(b, std::vector<float>(x0.size(), 0.f), dtype, {T, hidden});
    auto wd = put(b, w, DType::kF32, {hidden});
    for (int i = 0; i < kOps; ++i) {
      if (flip) b.set_step_priority(i % 2 == 0);
      b.add_rms_norm(x.view, residual.view, wd.view, 1e-5f, x.view);
    }
    return get(b, x.view);
  };
  const auto want = chain(*cpu_, DType::kF32, false);
  const auto steady = chain(*gpu_, act(), false);
  const auto flipped = chain(*gpu_, act(), true);
  EXPECT_LT(rel_err(steady, want), 2e-2);
  EXPECT_EQ(flipped, steady);

  gpu_->set_step_priority(true);
  auto x = put(*gpu_, x0, act(), {T, hidden});
  auto residual = put(*gpu_, std::vector<float>(x0.size(), 0.f), act(), {T, hidden});
  auto wd = put(*gpu_, w, DType::kF32, {hidden});
  ASSERT_TRUE(gpu_->begin_capture().ok());
  for (int i = 0; i < kOps; ++i) {
    gpu_->set_step_priority(i % 2 != 0);  // ignored: the capture stays on its stream
    gpu_->add_rms_norm(x.view, residual.view, wd.view, 1e-5f, x.view);
  }
  auto graph = gpu_->end_capture();
  ASSERT_TRUE(graph.ok()) << graph.status().to_string();
  gpu_->set_step_priority(false);
  ASSERT_TRUE(gpu_->replay(**graph));
  EXPECT_EQ(get(*gpu_, x.view), steady);
}

}  // namespace
}  // namespace tandem::optest
