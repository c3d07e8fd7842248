// Backend::sample's reference (the CPU backend): rows built by add_sample_row
// draw exactly what sample_token draws on the same request state.
#include <gtest/gtest.h>

#include <random>

#include "backend/backend.h"
#include "sampling/backend_sample.h"

namespace tandem {
namespace {

TEST(BackendSample, CpuMatchesSampleToken) {
  auto be = make_cpu_backend(1);
  std::mt19937 rng(7);
  const int V = 3000, L = 4;
  std::uniform_real_distribution<float> u(-5, 5);
  std::vector<float> logits(L * V);
  for (auto& x : logits) x = std::round(u(rng) * 4) / 4;  // ties too
  auto ids = [&](int n) {
    std::vector<int32_t> v(n);
    for (auto& x : v) x = static_cast<int32_t>(rng() % V);
    return v;
  };
  struct Req {
    SamplingParams p;
    std::vector<int32_t> prompt, output, banned;
    SamplingContext ctx;
    int row;
  };
  std::vector<Req> reqs(60);
  SampleBatch batch;
  for (size_t i = 0; i < reqs.size(); ++i) {
    Req& r = reqs[i];
    r.p.temperature = i % 5 == 0 ? 0.0f : 0.5f + 0.1f * static_cast<float>(i % 7);
    r.p.top_k = i % 3 == 0 ? static_cast<int>(rng() % 100) + 1 : 0;
    r.p.top_p = i % 4 == 0 ? 0.8f : 1.0f;
    r.p.min_p = i % 6 == 0 ? 0.1f : 0.0f;
    r.p.repetition_penalty = i % 2 ? 1.25f : 1.0f;
    r.p.presence_penalty = i % 3 == 1 ? 0.4f : 0.0f;
    r.p.frequency_penalty = i % 3 == 1 ? 0.2f : 0.0f;
    r.prompt = ids(static_cast<int>(rng() % 40));
    r.output = ids(static_cast<int>(rng() % 20));
    if (i % 4 == 1) r.banned = ids(3);
    r.ctx.prompt_tokens = r.prompt;
    r.ctx.output_tokens = r.output;
    r.ctx.banned_tokens = r.banned;
    r.ctx.seed = rng();
    r.ctx.choice_index = static_cast<int>(i % 3);
    r.row = static_cast<int>(i % L);
    add_sample_row(r.p, r.ctx, r.row, &batch);
  }
  auto ld = be->upload(TensorView(logits.data(), DType::kF32, {L, V}), DType::kF32);
  ASSERT_TRUE(ld.ok());
  auto out = be->allocate_tensor(DType::kI32, {static_cast<int64_t>(reqs.size())});
  ASSERT_TRUE(out.ok());
  batch.logits = ld->view;
  batch.out_ids = out->view;
  be->sample(batch);
  SamplerScratch scratch;
  for (size_t i = 0; i < reqs.size(); ++i) {
    const Req& r = reqs[i];
    std::span<const float> row(logits.data() + r.row * V, V);
    EXPECT_EQ(out->view.as<int32_t>()[i], sample_token(r.p, r.ctx, row, &scratch).token_id) << "request " << i;
  }
  // Penalty entries are distinct ids per row, with the output counts.
  SampleBatch one;
  SamplingParams p;
  p.repetition_penalty = 1.1f;
  p.frequency_penalty = 0.5f;
  const std::vector<int32_t> prompt = {5, 5, 9}, output = {9, 7, 7, 7}, banned = {7, 2};
  SamplingContext ctx;
  ctx.prompt_tokens = prompt;
  ctx.output_tokens = output;
  ctx.banned_tokens = banned;
  add_sample_row(p, ctx, 0, &one);
  ASSERT_EQ(one.penalties.size(), 4u);  // 2, 5, 7, 9
  EXPECT_EQ(one.penalties[0].id, 2);
  EXPECT_TRUE(one.penalties[0].banned && !one.penalties[0].seen);
  EXPECT_EQ(one.penalties[2].id, 7);
  EXPECT_EQ(one.penalties[2].output_count, 3);
  EXPECT_TRUE(one.penalties[2].banned && one.penalties[2].seen);
  EXPECT_EQ(one.penalties[3].output_count, 1);
  EXPECT_EQ(one.rows[0].output_index, 4);
}

}  // namespace
}  // namespace tandem
