// Batch invariance chained to the HF truth: on every golden fixture model, 40
// greedy requests submitted to one CPU engine (random prompt lengths,
// staggered arrival, repeated prefixes, prefill chunks mixed with decodes)
// produce exactly the tokens each request produces alone, and those are HF's
// greedy tokens.
//
// Prompts are a fixture prompt followed by the first j tokens of HF's greedy
// continuation (teacher forcing), so every output token has an HF reference:
// output t of a request with split j is HF's token j + t. A token that differs
// from HF's is allowed only at a near tie (golden_fixtures.h); the request is
// not compared with HF past it (the contexts differ from there on).
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "backend/backend.h"
#include "engine/engine.h"
#include "golden_fixtures.h"
#include "model/config.h"
#include "model/model_runner.h"

namespace tandem {
namespace {

using json = nlohmann::json;

struct Spec {
  std::string request_id;
  int prompt_index;  // into reference.json's prompts
  int split;         // HF tokens appended to the prompt
  std::vector<int32_t> prompt;
  int max_tokens;
  int arrive;  // step at which it is submitted
};

struct Outputs {
  std::map<std::string, std::vector<int32_t>> tokens;
  std::map<std::string, int> done;
};

GenerateRequest make_request(const Spec& s, Outputs* out) {
  GenerateRequest r;
  r.request_id = s.request_id;
  r.prompt_token_ids = s.prompt;
  r.sampling.temperature = 0.0f;
  r.sampling.max_tokens = s.max_tokens;
  r.sampling.ignore_eos = true;  // HF's greedy continuations ignore eos
  r.sink = [out, id = s.request_id](RequestEvent&& ev) {
    for (const auto& t : ev.tokens) out->tokens[id].push_back(t.token_id);
    if (ev.request_done) ++out->done[id];
  };
  return r;
}

class GoldenEngine : public ::testing::TestWithParam<const char*> {};

TEST_P(GoldenEngine, BatchedGreedyEqualsAloneAndTransformers) {
  if (golden::fixtures_root().empty())
    GTEST_SKIP() << "fixture archive " << golden::archive_path() << " is absent (see golden_models_test.cpp)";
  const std::string dir = golden::fixtures_root() + "/" + GetParam();
  const json ref = golden::read_json(dir + "/reference.json");
  auto config = ModelConfig::load(dir);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  ModelRunnerOptions ro;
  ro.page_size = 16;
  ro.num_pages = 160;
  auto runner = LocalModelRunner::create(make_cpu_backend(2), dir, ro);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();

  std::vector<std::vector<int32_t>> prompts, hf;
  for (const auto& p : ref["prompts"]) {
    prompts.push_back(p["prompt_ids"].get<std::vector<int32_t>>());
    hf.push_back(p["greedy_ids"].get<std::vector<int32_t>>());
  }
  ASSERT_FALSE(prompts.empty());
  std::mt19937 rng(29);
  std::vector<Spec> specs;
  for (int i = 0; i < 40; ++i) {
    Spec s;
    s.request_id = "r" + std::to_string(i);
    s.prompt_index = i % static_cast<int>(prompts.size());
    const auto& g = hf[s.prompt_index];
    s.split = static_cast<int>(rng() % g.size());
    s.prompt = prompts[s.prompt_index];
    s.prompt.insert(s.prompt.end(), g.begin(), g.begin() + s.split);
    s.max_tokens = 1 + static_cast<int>(rng() % (g.size() - s.split));
    s.arrive = static_cast<int>(rng() % 8);
    specs.push_back(std::move(s));
  }

  EngineConfig ec;
  ec.cache.page_size = 16;
  ec.cache.sliding_window = config->uniform_sliding_window();
  ec.scheduler.max_num_seqs = 32;
  ec.scheduler.max_num_batched_tokens = 48;  // prompts are chunked and mixed with decodes
  ec.eos_token_ids = config->eos_token_ids;
  ec.seed = 5;

  Outputs together;
  {
    auto engine = Engine::create(ec, runner->get(), nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    const int64_t calls0 = (*runner)->num_forward_calls();
    int steps = 0, mixed_steps = 0, max_batch = 0;
    for (int step = 0; step < 10000; ++step) {
      for (const auto& s : specs) {
        if (s.arrive == step) {
          ASSERT_TRUE((*engine)->add_request(make_request(s, &together)).ok());
        }
      }
      if (step >= 8 && !(*engine)->has_work()) break;
      ASSERT_TRUE((*engine)->step().ok());
      const SchedulerOutput& so = (*engine)->last_schedule();
      if (so.scheduled.empty()) continue;
      ++steps;
      max_batch = std::max(max_batch, static_cast<int>(so.scheduled.size()));
      // A prefill chunk (more tokens than sequences) next to at least one decode.
      if (so.num_tokens > static_cast<int>(so.scheduled.size()) && so.scheduled.size() > 1) ++mixed_steps;
    }
    EXPECT_EQ((*runner)->num_forward_calls() - calls0, steps) << "one forward per step";
    EXPECT_GT(mixed_steps, 0) << "no step mixed prefill with other sequences";
    EXPECT_GE(max_batch, 16);
    EXPECT_GT((*engine)->stats().num_prefix_hit_tokens, 0) << "repeated prefixes should hit the prefix cache";
  }

  int near_ties = 0;
  for (const auto& s : specs) {
    ASSERT_EQ(together.done[s.request_id], 1) << s.request_id;
    Outputs alone;
    auto engine = Engine::create(ec, runner->get(), nullptr);
    ASSERT_TRUE(engine.ok());
    ASSERT_TRUE((*engine)->add_request(make_request(s, &alone)).ok());
    while ((*engine)->has_work()) ASSERT_TRUE((*engine)->step().ok());
    const auto& ours = together.tokens[s.request_id];
    ASSERT_EQ(ours.size(), static_cast<size_t>(s.max_tokens)) << s.request_id;
    EXPECT_EQ(ours, alone.tokens[s.request_id]) << GetParam() << " " << s.request_id << ": batched != alone";
    const auto& g = hf[s.prompt_index];
    for (int t = 0; t < s.max_tokens; ++t) {
      const int k = s.split + t;
      if (ours[t] == g[k]) continue;
      EXPECT_TRUE(golden::is_near_tie(ref["prompts"][s.prompt_index]["steps"][k], ours[t]))
          << GetParam() << " " << s.request_id << ": token " << t << " is " << ours[t] << ", HF " << g[k]
          << " (prompt " << s.prompt_index << " + " << s.split << " HF tokens), not a near tie";
      ++near_ties;
      break;
    }
  }
  std::printf("%s: %zu requests, %d near-tie divergence(s) from HF\n", GetParam(), specs.size(), near_ties);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenEngine, ::testing::ValuesIn(golden::kVariants),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

}  // namespace
}  // namespace tandem
