#include "bench/prompts.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

#include <gtest/gtest.h>

namespace tandem::bench {
namespace {

// Counts like a tokenizer that splits some words in two and adds a BOS.
class SplittingCounter : public TokenCounter {
 public:
  StatusOr<int> count(const std::string&, const std::string& text) override {
    ++calls;
    int n = 1;  // BOS
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find(' ', pos);
      if (end == std::string::npos) end = text.size();
      n += (end - pos) > 5 ? 2 : 1;  // long words are two tokens
      pos = end + 1;
    }
    return n;
  }
  int calls = 0;
};

TEST(Prompts, ExactLengthDespiteMultiTokenWords) {
  SplittingCounter counter;
  std::mt19937_64 rng(1);
  for (int target : {2, 3, 17, 100, 513}) {
    int actual = 0;
    auto text = build_prompt(counter, "m", target, rng, &actual);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(actual, target);
    EXPECT_EQ(*counter.count("m", *text), target);
  }
  EXPECT_LT(counter.calls, 5 * 12 + 5);
}

TEST(Prompts, UnreachableLengthGivesNearestBelow) {
  SplittingCounter counter;
  std::mt19937_64 rng(1);
  int actual = 0;
  auto text = build_prompt(counter, "m", 1, rng, &actual);  // BOS + one word is already 2
  ASSERT_TRUE(text.ok());
  EXPECT_GE(actual, 2);
}

TEST(Prompts, ModelMixHasExactCounts) {
  std::mt19937_64 rng(3);
  auto m = assign_models(10, {3, 1}, rng);
  ASSERT_EQ(m.size(), 10u);
  EXPECT_EQ(std::count(m.begin(), m.end(), 0), 8);  // 7.5 -> 8 by largest remainder (tie: first)
  EXPECT_EQ(std::count(m.begin(), m.end(), 1), 2);
  auto e = assign_models(7, {1, 1, 1}, rng);
  EXPECT_EQ(std::count(e.begin(), e.end(), 0) + std::count(e.begin(), e.end(), 1) + std::count(e.begin(), e.end(), 2),
            7);
  for (int k = 0; k < 3; ++k) EXPECT_GE(std::count(e.begin(), e.end(), k), 2);
}

TEST(Prompts, ArrivalsArePoissonOrGamma) {
  const int n = 20000;
  for (double b : {1.0, 0.25, 4.0}) {
    auto t = arrival_times(n, 10.0, b, 42);
    ASSERT_EQ(t.size(), static_cast<size_t>(n));
    EXPECT_EQ(t[0], 0.0);
    std::vector<double> gaps;
    for (int i = 1; i < n; ++i) gaps.push_back(t[i] - t[i - 1]);
    double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / gaps.size();
    double var = 0;
    for (double g : gaps) var += (g - mean) * (g - mean);
    var /= gaps.size();
    EXPECT_NEAR(mean, 0.1, 0.005) << "burstiness " << b;
    // A gamma gap with shape b has coefficient of variation 1/sqrt(b).
    EXPECT_NEAR(std::sqrt(var) / mean, 1 / std::sqrt(b), 0.06) << "burstiness " << b;
  }
  auto all = arrival_times(5, std::numeric_limits<double>::infinity(), 1, 0);
  for (double v : all) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(arrival_times(50, 3, 1, 9), arrival_times(50, 3, 1, 9));  // seeded
}

TEST(Prompts, LengthsWithinRange) {
  std::mt19937_64 rng(0);
  auto l = sample_lengths(1000, 100, 0.25, rng);
  EXPECT_EQ(*std::min_element(l.begin(), l.end()), 75);
  EXPECT_EQ(*std::max_element(l.begin(), l.end()), 125);
  auto f = sample_lengths(10, 64, 0, rng);
  for (int v : f) EXPECT_EQ(v, 64);
}

TEST(Prompts, RequestBodies) {
  BenchOptions o;
  o.models = {"m"};
  auto j = nlohmann::json::parse(request_body(o, "m", "hello", 12));
  EXPECT_EQ(j["prompt"], "hello");
  EXPECT_EQ(j["max_tokens"], 12);
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
  EXPECT_EQ(j["ignore_eos"], true);
  o.endpoint = Endpoint::kChat;
  j = nlohmann::json::parse(request_body(o, "m", "hello", 12));
  EXPECT_EQ(j["messages"][0]["role"], "user");
  EXPECT_EQ(j["messages"][0]["content"], "hello");
  EXPECT_FALSE(j.contains("prompt"));
}

std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Prompts, DatasetLinesAndErrors) {
  BenchOptions o;
  o.models = {"a", "b"};
  o.num_prompts = 5;
  o.output_len = 33;
  o.dataset = write_temp("ds_ok.jsonl", "{\"prompt\": \"one\", \"max_tokens\": 4}\n\n{\"prompt\": \"two\"}\n");
  auto r = plan_dataset(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].max_tokens, 4);
  EXPECT_EQ((*r)[1].max_tokens, 33);
  EXPECT_EQ(nlohmann::json::parse((*r)[2].body)["prompt"], "one");  // wraps around

  auto expect_error = [&](const std::string& text, const std::string& needle, Endpoint e = Endpoint::kCompletions) {
    BenchOptions c = o;
    c.endpoint = e;
    c.dataset = write_temp("ds_bad.jsonl", text);
    auto s = plan_dataset(c);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_NE(s.status().message().find(needle), std::string::npos) << s.status().message();
  };
  expect_error("{\"prompt\": \"a\"}\nnot json\n", "ds_bad.jsonl:2: not a JSON object");
  expect_error("{\"text\": \"a\"}\n", ":1: has neither \"prompt\" nor \"messages\"");
  expect_error("{\"prompt\": \"a\", \"max_tokens\": 0}\n", "\"max_tokens\" is not a positive integer");
  expect_error("{\"messages\": [{\"role\":\"user\",\"content\":\"x\"}]}\n", "needs --endpoint chat");
  expect_error("\n\n", "no requests");
  BenchOptions c = o;
  c.endpoint = Endpoint::kChat;
  c.dataset = write_temp("ds_chat.jsonl", "{\"messages\": [{\"role\":\"user\",\"content\":\"x\"}], \"max_tokens\": 3}\n");
  auto chat = plan_dataset(c);
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(nlohmann::json::parse((*chat)[0].body)["messages"][0]["content"], "x");
  c.dataset = "/nonexistent/x.jsonl";
  EXPECT_FALSE(plan_dataset(c).ok());
}

}  // namespace
}  // namespace tandem::bench

namespace tandem::bench {
namespace {

std::string tokenizer_path(const std::string& name) {
  return std::string(TANDEM_SOURCE_DIR) + "/.cache/data/tokenizers/" + name;
}

TEST(Prompts, ExactLengthWithRealTokenizers) {
  std::vector<std::string> names = {"llama3", "qwen2_5", "mistral"};
  std::vector<std::string> paths;
  for (const auto& n : names) paths.push_back(tokenizer_path(n));
  if (!std::ifstream(paths[0] + "/tokenizer.json")) GTEST_SKIP() << "no tokenizer data (scripts/fetch_data.sh)";
  auto counter = LocalTokenCounter::load(paths, names);
  ASSERT_TRUE(counter.ok()) << counter.status().message();
  std::mt19937_64 rng(7);
  for (const auto& model : names) {
    for (int target : {5, 64, 1000}) {
      int actual = 0;
      auto text = build_prompt(**counter, model, target, rng, &actual);
      ASSERT_TRUE(text.ok()) << text.status().message();
      EXPECT_EQ(actual, target) << model;
      EXPECT_EQ(*(*counter)->count(model, *text), target) << model;
    }
  }
  EXPECT_FALSE((*counter)->count("other", "x").ok());
  auto missing = LocalTokenCounter::load({"/nonexistent-tokenizer"}, {"m"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("--tokenizer /nonexistent-tokenizer"), std::string::npos);
}

}  // namespace
}  // namespace tandem::bench
