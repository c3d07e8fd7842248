// The engine over the real CPU model (models/tandem-tiny-general, a trained
// Mistral with a sliding window): 36 requests with random lengths, repeated
// prefixes and staggered arrival, mixed prefill chunks and decodes, give the
// same greedy tokens as each request alone.
#include <gtest/gtest.h>

#include <random>

#include "backend/registry.h"
#include "engine/engine.h"
#include "model/config.h"
#include "model/model_runner.h"

namespace tandem {
namespace {

const std::string kModel = std::string(TANDEM_SOURCE_DIR) + "/models/tandem-tiny-general";

struct Outputs {
  std::map<std::string, std::vector<int32_t>> tokens;
  std::map<std::string, int> done;
};

EventSink sink_into(Outputs* run, const std::string& id) {
  return [run, id](RequestEvent&& ev) {
    for (const auto& t : ev.tokens) run->tokens[id].push_back(t.token_id);
    if (ev.request_done) ++run->done[id];
  };
}

TEST(RealModel, BatchedGreedyEqualsEachRequestAlone) {
  auto config = ModelConfig::load(kModel);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  BackendOptions bo;
  bo.cpu_threads = 1;
  auto backend = create_backend("cpu", bo);
  ASSERT_TRUE(backend.ok()) << backend.status().to_string();
  ModelRunnerOptions ro;
  ro.page_size = 16;
  ro.num_pages = 160;
  auto runner = LocalModelRunner::create(std::move(*backend), kModel, ro);
  ASSERT_TRUE(runner.ok()) << runner.status().to_string();

  EngineConfig ec;
  ec.cache.page_size = 16;
  ec.cache.sliding_window = config->uniform_sliding_window();
  ec.scheduler.max_num_seqs = 24;
  ec.scheduler.max_num_batched_tokens = 96;  // prompts are chunked and mixed with decodes
  ec.scheduler.max_model_len = 256;
  ec.eos_token_ids = config->eos_token_ids;
  ec.seed = 3;

  struct Spec {
    std::string id;
    std::vector<int32_t> prompt;
    int max_tokens;
    int arrive;
  };
  std::mt19937 rng(17);
  auto tokens = [&](int n) {
    std::vector<int32_t> v(n);
    for (auto& x : v) x = 3 + static_cast<int32_t>(rng() % 31000);
    return v;
  };
  std::vector<std::vector<int32_t>> prefixes = {tokens(40), tokens(17)};
  std::vector<Spec> specs;
  for (int i = 0; i < 36; ++i) {
    Spec s;
    s.id = "r" + std::to_string(i);
    if (i % 3 != 2) s.prompt = prefixes[i % 2];
    auto tail = tokens(1 + static_cast<int>(rng() % 50));
    s.prompt.insert(s.prompt.end(), tail.begin(), tail.end());
    s.max_tokens = 2 + static_cast<int>(rng() % 7);
    s.arrive = static_cast<int>(rng() % 12);
    specs.push_back(s);
  }
  auto make_request = [&](const Spec& s, Outputs* run) {
    GenerateRequest r;
    r.request_id = s.id;
    r.prompt_token_ids = s.prompt;
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = s.max_tokens;
    r.sink = sink_into(run, s.id);
    return r;
  };

  Outputs together;
  {
    auto engine = Engine::create(ec, runner->get(), nullptr);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    int64_t calls0 = (*runner)->num_forward_calls();
    int steps = 0;
    for (int step = 0; step < 10000; ++step) {
      for (const auto& s : specs) {
        if (s.arrive == step) ASSERT_TRUE((*engine)->add_request(make_request(s, &together)).ok());
      }
      if (step >= 12 && !(*engine)->has_work()) break;
      Status st = (*engine)->step();
      ASSERT_TRUE(st.ok()) << st.to_string();
      steps += (*engine)->last_schedule().scheduled.empty() ? 0 : 1;
    }
    EXPECT_EQ((*runner)->num_forward_calls() - calls0, steps);  // one forward per step
    EXPECT_GT((*engine)->stats().num_prefix_hit_tokens, 0);
  }
  for (const auto& s : specs) {
    Outputs alone;
    auto engine = Engine::create(ec, runner->get(), nullptr);
    ASSERT_TRUE(engine.ok());
    ASSERT_TRUE((*engine)->add_request(make_request(s, &alone)).ok());
    while ((*engine)->has_work()) ASSERT_TRUE((*engine)->step().ok());
    ASSERT_EQ(together.done[s.id], 1) << s.id;
    EXPECT_EQ(together.tokens[s.id], alone.tokens[s.id]) << s.id;
    EXPECT_FALSE(alone.tokens[s.id].empty());
  }
}

}  // namespace
}  // namespace tandem

namespace tandem {
namespace {

// Pages wholly outside the model's 256-token window are freed (marked -1) and
// the tokens do not change.
TEST(RealModel, FreeingPagesOutsideTheWindowKeepsTheTokens) {
  auto config = ModelConfig::load(kModel);
  ASSERT_TRUE(config.ok());
  ASSERT_EQ(config->uniform_sliding_window(), 256);
  BackendOptions bo;
  bo.cpu_threads = 1;
  auto backend = create_backend("cpu", bo);
  ASSERT_TRUE(backend.ok());
  ModelRunnerOptions ro;
  ro.page_size = 16;
  ro.num_pages = 64;
  auto runner = LocalModelRunner::create(std::move(*backend), kModel, ro);
  ASSERT_TRUE(runner.ok());
  std::mt19937 rng(5);
  std::vector<int32_t> prompt(300);
  for (auto& x : prompt) x = 3 + static_cast<int32_t>(rng() % 31000);
  auto run = [&](int window) {
    EngineConfig ec;
    ec.cache.page_size = 16;
    ec.cache.sliding_window = window;
    ec.scheduler.max_num_batched_tokens = 128;
    ec.scheduler.max_model_len = 1024;
    auto engine = Engine::create(ec, runner->get(), nullptr);
    EXPECT_TRUE(engine.ok());
    std::vector<int32_t> out;
    GenerateRequest r;
    r.request_id = "long";
    r.prompt_token_ids = prompt;
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = 24;
    r.sampling.ignore_eos = true;
    r.sink = [&out](RequestEvent&& ev) {
      for (const auto& t : ev.tokens) out.push_back(t.token_id);
    };
    EXPECT_TRUE((*engine)->add_request(std::move(r)).ok());
    int max_active = 0;
    while ((*engine)->has_work()) {
      EXPECT_TRUE((*engine)->step().ok());
      max_active = std::max(max_active, (*engine)->kv().pool().num_active());
    }
    return std::make_pair(out, max_active);
  };
  auto [freed, freed_pages] = run(256);
  auto [kept, kept_pages] = run(0);
  EXPECT_EQ(freed, kept);
  EXPECT_EQ(kept_pages, 21);       // 324 tokens
  EXPECT_LE(freed_pages, 17 + 8);  // window (16 pages) + current + a prefill chunk (8 pages)
  EXPECT_LT(freed_pages, kept_pages);
}

}  // namespace
}  // namespace tandem
