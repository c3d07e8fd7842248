// Sampling on known distributions.
#include <gtest/gtest.h>

#include <cmath>

#include "sampling/sampler.h"

namespace tandem {
namespace {

std::vector<float> logs(std::vector<double> p) {
  std::vector<float> out;
  for (double x : p) out.push_back(static_cast<float>(std::log(x)));
  return out;
}

std::vector<float> dist(SamplingParams p, std::vector<float> logits) {
  std::vector<float> probs;
  std::vector<int32_t> order;
  truncated_distribution(p, logits, &probs, &order);
  return probs;
}

void expect_probs(const std::vector<float>& got, std::vector<double> want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5) << "token " << i;
}

const std::vector<double> kP = {0.05, 0.5, 0.15, 0.3};  // sorted: 1, 3, 2, 0

TEST(Sampler, TemperatureOneIsTheSoftmax) { expect_probs(dist({}, logs(kP)), kP); }

TEST(Sampler, TopK) {
  SamplingParams p;
  p.top_k = 2;
  expect_probs(dist(p, logs(kP)), {0, 0.625, 0, 0.375});
  p.top_k = 1;
  expect_probs(dist(p, logs(kP)), {0, 1, 0, 0});
  p.top_k = 4;
  expect_probs(dist(p, logs(kP)), kP);
}

TEST(Sampler, TopP) {
  SamplingParams p;
  p.top_p = 0.7f;  // 0.5 (mass before 0), 0.3 (before 0.5 < 0.7); then 0.8 >= 0.7 stops
  expect_probs(dist(p, logs(kP)), {0, 0.625, 0, 0.375});
  p.top_p = 0.5f;
  expect_probs(dist(p, logs(kP)), {0, 1, 0, 0});
  p.top_p = 0.81f;
  expect_probs(dist(p, logs(kP)), {0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95});
  p.top_k = 3;
  p.top_p = 0.6f;  // top-3 renormalized: .5/.95 = .526 < .6, so the next one stays
  expect_probs(dist(p, logs(kP)), {0, 0.625, 0, 0.375});
}

TEST(Sampler, TopPOverALargeVocabularyUsesTheHeadOrSortsAll) {
  // 5000 tokens: one at 90%, the rest equal. p = 0.95 needs far more than 1024 tokens.
  std::vector<double> probs(5000, 0.1 / 4999);
  probs[42] = 0.9;
  SamplingParams p;
  p.top_p = 0.95f;
  auto d = dist(p, logs(probs));
  int kept = 0;
  for (float x : d) kept += x > 0;
  // 0.9 + k * 0.1/4999 >= 0.95 first when k = 2500 (mass before the last kept < p).
  EXPECT_EQ(kept, 1 + 2500);
  p.top_p = 0.9f;
  d = dist(p, logs(probs));
  EXPECT_NEAR(d[42], 1.0, 1e-6);
}

TEST(Sampler, MinP) {
  SamplingParams p;
  p.min_p = 0.5f;  // keep p >= 0.25
  expect_probs(dist(p, logs(kP)), {0, 0.625, 0, 0.375});
  p.min_p = 0.2f;  // keep p >= 0.1
  expect_probs(dist(p, logs(kP)), {0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95});
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  SamplingParams p;
  p.temperature = 0.5f;  // p^2 normalized
  double z = 0;
  for (double x : kP) z += x * x;
  std::vector<double> want;
  for (double x : kP) want.push_back(x * x / z);
  expect_probs(dist(p, logs(kP)), want);
}

TEST(Sampler, Penalties) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  std::vector<int32_t> prompt{0, 1};
  std::vector<int32_t> output{2, 2, 2, 3};
  SamplingContext ctx;
  ctx.prompt_tokens = prompt;
  ctx.output_tokens = output;
  std::vector<float> x{4.0f, -2.0f, 1.0f, 3.0f, 5.0f};
  apply_penalties(p, ctx, x);
  EXPECT_FLOAT_EQ(x[0], 2.0f);                     // prompt, positive: divided
  EXPECT_FLOAT_EQ(x[1], -4.0f);                    // prompt, negative: multiplied
  EXPECT_FLOAT_EQ(x[2], 0.5f - 0.5f - 3 * 0.25f);  // output x3: repetition, presence, frequency
  EXPECT_FLOAT_EQ(x[3], 1.5f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(x[4], 5.0f);                     // unseen
  std::vector<int32_t> banned{4};
  ctx.banned_tokens = banned;
  apply_penalties(SamplingParams{}, ctx, x);
  EXPECT_TRUE(std::isinf(x[4]) && x[4] < 0);
}

TEST(Sampler, GreedyIsArgmaxAfterPenalties) {
  SamplingParams p;
  p.temperature = 0.0f;
  std::vector<float> x{1.0f, 3.0f, 2.0f};
  SamplerScratch s;
  EXPECT_EQ(sample_token(p, {}, x, &s).token_id, 1);
  p.repetition_penalty = 4.0f;
  std::vector<int32_t> prompt{1};
  SamplingContext ctx;
  ctx.prompt_tokens = prompt;
  EXPECT_EQ(sample_token(p, ctx, x, &s).token_id, 2);  // 3/4 < 2
}

TEST(Sampler, DrawsFollowTheDistribution) {
  SamplingParams p;
  p.top_k = 3;
  auto x = logs(kP);
  SamplerScratch s;
  std::vector<int> count(4, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    SamplingContext ctx;
    ctx.seed = static_cast<uint64_t>(i);
    ++count[sample_token(p, ctx, x, &s).token_id];
  }
  std::vector<double> want{0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95};
  for (int t = 0; t < 4; ++t) {
    double sd = std::sqrt(want[t] * (1 - want[t]) / n);
    EXPECT_NEAR(count[t] / static_cast<double>(n), want[t], 5 * sd + 1e-9) << t;
  }
}

TEST(Sampler, SeededDrawsArePureFunctionsOfSeedChoiceAndIndex) {
  EXPECT_EQ(sample_uniform(5, 0, 3), sample_uniform(5, 0, 3));
  EXPECT_NE(sample_uniform(5, 0, 3), sample_uniform(5, 1, 3));
  EXPECT_NE(sample_uniform(5, 0, 3), sample_uniform(5, 0, 4));
  EXPECT_NE(sample_uniform(5, 0, 3), sample_uniform(6, 0, 3));
  double lo = 1, hi = 0;
  for (int i = 0; i < 10000; ++i) {
    double u = sample_uniform(1, 0, i);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  EXPECT_LT(lo, 0.001);
  EXPECT_GT(hi, 0.999);
}

TEST(Sampler, LogprobsOfRawLogits) {
  TokenOutput out;
  out.token_id = 2;
  auto x = logs(kP);
  for (float& v : x) v += 3.0f;  // shift-invariant
  fill_logprobs(x, 2, &out);
  EXPECT_NEAR(out.logprob, std::log(0.15), 1e-5);
  ASSERT_EQ(out.top.size(), 2u);
  EXPECT_EQ(out.top[0].token_id, 1);
  EXPECT_NEAR(out.top[0].logprob, std::log(0.5), 1e-5);
  EXPECT_EQ(out.top[1].token_id, 3);
  // Sampling parameters never change the reported logprobs.
  SamplingParams p;
  p.temperature = 0.3f;
  p.top_k = 1;
  p.logprobs = 0;
  SamplerScratch s;
  TokenOutput t = sample_token(p, {}, x, &s);
  EXPECT_EQ(t.token_id, 1);
  EXPECT_NEAR(t.logprob, std::log(0.5), 1e-5);
  EXPECT_TRUE(t.top.empty());
}

}  // namespace
}  // namespace tandem
