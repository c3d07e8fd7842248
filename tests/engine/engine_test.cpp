// Engine over the fake model: one forward per step, batch invariance, prefix
// caching, preemption, n > 1, stop conditions, abort, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "engine_harness.h"

namespace tandem::testing {
namespace {

constexpr int kVocab = 64;

std::vector<int32_t> random_tokens(std::mt19937& rng, int n) {
  std::uniform_int_distribution<int> d(0, kVocab - 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

EngineConfig config(int max_batched = 64, int max_seqs = 64) {
  EngineConfig c;
  c.scheduler.max_num_batched_tokens = max_batched;
  c.scheduler.max_num_seqs = max_seqs;
  c.seed = 1234;
  return c;
}

TEST(Engine, OneForwardPerStepOverAMixedBatch) {
  Harness h(config(/*max_batched=*/40), kVocab, 64, 4);
  std::mt19937 rng(1);
  ASSERT_TRUE(h.add("a", random_tokens(rng, 5), greedy(20)).ok());
  ASSERT_TRUE(h.add("b", random_tokens(rng, 3), greedy(20)).ok());
  ASSERT_TRUE(h.engine().step().ok());  // both prompts prefilled in one pass
  EXPECT_EQ(h.runner().num_forward_calls(), 1);
  EXPECT_EQ(h.runner().batch_tokens().back(), 8);
  ASSERT_TRUE(h.add("long", random_tokens(rng, 100), greedy(5)).ok());
  bool saw_mixed = false;
  for (int step = 2; h.engine().has_work(); ++step) {
    ASSERT_TRUE(h.engine().step().ok());
    EXPECT_EQ(h.runner().num_forward_calls(), step);
    const auto& sched = h.engine().last_schedule().scheduled;
    int decodes = 0, chunks = 0;
    for (const auto& s : sched) (s.num_new == 1 ? decodes : chunks) += 1;
    EXPECT_LE(h.engine().last_schedule().num_tokens, 40);
    if (decodes == 2 && chunks == 1) saw_mixed = true;
  }
  EXPECT_TRUE(saw_mixed) << "a chunked prefill never ran together with decodes";
  for (const char* id : {"a", "b", "long"}) EXPECT_TRUE(h.result(id).done());
}

TEST(Engine, GreedyEqualsDirectComputation) {
  Harness h(config(), kVocab, 64, 4);
  std::mt19937 rng(2);
  auto prompt = random_tokens(rng, 13);
  ASSERT_TRUE(h.add("x", prompt, greedy(17)).ok());
  h.run();
  auto& r = h.result("x");
  EXPECT_EQ(r.tokens[0], fake_greedy(prompt, kVocab, 17));
  EXPECT_EQ(r.finish[0], FinishReason::kLength);
  EXPECT_EQ(r.num_done_events, 1);
  EXPECT_EQ(r.done_event.num_prompt_tokens, 13);
  EXPECT_EQ(r.done_event.num_output_tokens, 17);
  EXPECT_EQ(h.engine().kv().pool().num_active(), 0);
}

// 40 requests, random lengths, 3 shared prefixes, arriving over the first 30
// steps, greedy and seeded sampling mixed: each equals the same request alone.
TEST(Engine, BatchInvariance) {
  struct Spec {
    std::string id;
    std::vector<int32_t> prompt;
    SamplingParams params;
    int arrive_step;
  };
  std::mt19937 rng(3);
  std::vector<std::vector<int32_t>> prefixes = {random_tokens(rng, 70), random_tokens(rng, 45), random_tokens(rng, 20)};
  std::vector<Spec> specs;
  for (int i = 0; i < 40; ++i) {
    Spec s;
    s.id = "r" + std::to_string(i);
    if (i % 2 == 0) s.prompt = prefixes[i % 3];
    auto tail = random_tokens(rng, 1 + rng() % 60);
    s.prompt.insert(s.prompt.end(), tail.begin(), tail.end());
    s.params = greedy(1 + rng() % 30);
    if (i % 3 == 1) {
      s.params.temperature = 0.9f;
      s.params.top_p = 0.9f;
      s.params.seed = 1000 + i;
    }
    if (i % 5 == 0) s.params.repetition_penalty = 1.3f;
    s.arrive_step = rng() % 30;
    specs.push_back(s);
  }
  // Together: small token budget so prefills are chunked and mixed with decodes.
  Harness together(config(/*max_batched=*/24, /*max_seqs=*/16), kVocab, 400, 8);
  for (int step = 0; step < 100000; ++step) {
    for (const auto& s : specs) {
      if (s.arrive_step == step) ASSERT_TRUE(together.add(s.id, s.prompt, s.params).ok());
    }
    if (step >= 30 && !together.engine().has_work()) break;
    ASSERT_TRUE(together.engine().step().ok());
  }
  EXPECT_GT(together.engine().stats().num_prefix_hit_tokens, 0);
  for (const auto& s : specs) {
    Harness alone(config(), kVocab, 400, 8, false, 0);
    ASSERT_TRUE(alone.add(s.id, s.prompt, s.params).ok());
    alone.run();
    const auto& a = alone.result(s.id);
    const auto& t = together.result(s.id);
    ASSERT_TRUE(t.done()) << s.id;
    EXPECT_EQ(t.tokens[0], a.tokens[0]) << s.id;
    if (s.params.temperature == 0.0f && s.params.repetition_penalty == 1.0f) {
      EXPECT_EQ(t.tokens[0], fake_greedy(s.prompt, kVocab, s.params.max_tokens)) << s.id;
    }
  }
  EXPECT_EQ(together.engine().kv().pool().num_active(), 0);
  together.engine().kv().pool().check_invariants();
}

TEST(Engine, PrefixCacheServesARepeatedPrompt) {
  Harness h(config(), kVocab, 32, 16);
  std::mt19937 rng(4);
  auto prompt = random_tokens(rng, 48);
  ASSERT_TRUE(h.add("first", prompt, greedy(4)).ok());
  h.run();
  ASSERT_TRUE(h.add("second", prompt, greedy(4)).ok());
  h.run();
  // 48 tokens = 3 full blocks, but the last token is always computed: 2 blocks hit.
  EXPECT_EQ(h.result("first").done_event.num_cached_prompt_tokens, 0);
  EXPECT_EQ(h.result("second").done_event.num_cached_prompt_tokens, 32);
  EXPECT_EQ(h.result("first").tokens, h.result("second").tokens);
  EXPECT_EQ(h.runner().batch_tokens().back(), 1);
  auto stats = h.engine().stats();
  EXPECT_EQ(stats.num_prefix_hit_tokens, 32);
  EXPECT_EQ(stats.num_prefix_query_tokens, 96);
}

TEST(Engine, PreemptionWithATinyPoolRecomputesAndMatches) {
  // 12 pages of 4 tokens = 48 slots; each request ends at 10 + 20 = 30 tokens (8 pages).
  EngineConfig c = config(64, 8);
  c.cache.enable_prefix_caching = false;
  c.scheduler.max_model_len = 32;
  Harness h(c, kVocab, 12, 4);
  std::mt19937 rng(5);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {
    prompts.push_back(random_tokens(rng, 10));
    ASSERT_TRUE(h.add("p" + std::to_string(i), prompts.back(), greedy(20)).ok());
  }
  for (int i = 0; i < 10000 && h.engine().has_work(); ++i) {
    ASSERT_TRUE(h.engine().step().ok());
    h.engine().kv().pool().check_invariants();
    // FCFS: the oldest request is never the one preempted while a newer one runs.
    const auto& running = h.engine().scheduler().running();
    for (auto* w : h.engine().scheduler().waiting()) {
      if (!running.empty()) EXPECT_GT(w->order, running.front()->order);
    }
  }
  EXPECT_GT(h.engine().stats().num_preemptions, 0);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(h.result("p" + std::to_string(i)).tokens[0], fake_greedy(prompts[i], kVocab, 20)) << i;
  }
  EXPECT_EQ(h.engine().kv().pool().num_free(), 12);
}

TEST(Engine, NChoicesSharePromptPagesAndChoiceZeroMatchesN1) {
  Harness h(config(), kVocab, 64, 4);
  std::mt19937 rng(6);
  auto prompt = random_tokens(rng, 10);  // last page half full: shared, then copied on write
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 77;
  p.max_tokens = 12;
  p.n = 3;
  ASSERT_TRUE(h.add("multi", prompt, p).ok());
  ASSERT_TRUE(h.engine().step().ok());  // prefill once, fork, first tokens
  EXPECT_EQ(h.runner().batch_tokens()[0], 10);
  EXPECT_EQ(h.engine().scheduler().num_running(), 3);
  EXPECT_EQ(h.engine().kv().pool().num_active(), 3);  // the three prompt pages, shared
  h.run();
  EXPECT_EQ(h.runner().num_copied_pages(), 2);  // two choices copied the half-full page
  auto& r = h.result("multi");
  ASSERT_TRUE(r.done());
  EXPECT_EQ(r.num_done_events, 1);
  EXPECT_EQ(r.done_event.num_output_tokens, 36);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(r.tokens[c].size(), 12u);
  EXPECT_NE(r.tokens[0], r.tokens[1]);
  p.n = 1;
  ASSERT_TRUE(h.add("single", prompt, p).ok());
  h.run();
  EXPECT_EQ(h.result("single").tokens[0], r.tokens[0]);
  EXPECT_EQ(h.engine().kv().pool().num_active(), 0);
}

// Sampling on the backend (what a CUDA runner does: ids only) gives the same
// tokens as the host sampler: greedy requests (with penalties, n > 1 forks,
// min_tokens bans) go to the backend; steps with sampled requests (seeded
// temperature/top-k/top-p/min-p) or logprobs stay on the host path.
TEST(Engine, BackendSamplingMatchesHostSampling) {
  auto cpu = make_cpu_backend(1);
  std::map<std::string, std::vector<std::vector<int32_t>>> tokens[2];
  int64_t backend_samples[2] = {0, 0};
  for (int mode = 0; mode < 2; ++mode) {
    Harness h(config(), kVocab, 64, 4);
    if (mode == 1) h.runner().set_sampling_backend(cpu.get());
    std::mt19937 rng(11);
    // Greedy requests first, alone: their steps sample on the backend.
    for (int i = 0; i < 4; ++i) {
      SamplingParams p = greedy(8);
      p.repetition_penalty = i == 1 ? 1.3f : 1.0f;
      p.frequency_penalty = i == 2 ? 0.5f : 0.0f;
      p.presence_penalty = i == 2 ? 0.2f : 0.0f;
      p.n = i == 3 ? 2 : 1;
      p.min_tokens = i == 0 ? 4 : 0;
      p.stop_token_ids = {3};
      ASSERT_TRUE(h.add("g" + std::to_string(i), random_tokens(rng, 6 + i), p).ok());
    }
    h.run();
    const int64_t greedy_samples = h.runner().num_backend_samples();
    for (int i = 0; i < 8; ++i) {
      SamplingParams p;
      p.temperature = 0.6f + 0.2f * static_cast<float>(i % 3);
      p.top_k = i % 3 == 1 ? 10 : -1;
      p.top_p = i % 2 ? 0.9f : 1.0f;
      p.min_p = i == 5 ? 0.05f : 0.0f;
      p.repetition_penalty = i % 4 == 2 ? 1.3f : 1.0f;
      p.frequency_penalty = i == 3 ? 0.5f : 0.0f;
      p.presence_penalty = i == 3 ? 0.2f : 0.0f;
      p.seed = 100 + i;
      p.max_tokens = 10;
      p.n = i == 6 ? 3 : 1;
      p.min_tokens = i == 7 ? 5 : 0;
      p.stop_token_ids = {3};
      ASSERT_TRUE(h.add("r" + std::to_string(i), random_tokens(rng, 5 + i), p).ok());
    }
    h.run();
    if (mode == 1) {
      EXPECT_GT(greedy_samples, 0);
      EXPECT_EQ(h.runner().num_backend_samples(), greedy_samples) << "sampled requests stay on the host";
    }
    // A step with a logprobs request samples on the host.
    const int64_t before = h.runner().num_backend_samples();
    SamplingParams lp = greedy(3);
    lp.logprobs = 2;
    ASSERT_TRUE(h.add("logprobs", random_tokens(rng, 6), lp).ok());
    h.run();
    EXPECT_EQ(h.runner().num_backend_samples(), before);
    EXPECT_EQ(h.result("logprobs").outputs[0].size(), 3u);
    EXPECT_EQ(h.result("logprobs").outputs[0][0].top.size(), 2u);
    for (auto& [id, r] : h.results()) tokens[mode][id] = r.tokens;
    backend_samples[mode] = h.runner().num_backend_samples();
  }
  EXPECT_EQ(backend_samples[0], 0);
  EXPECT_GT(backend_samples[1], 0);
  EXPECT_EQ(tokens[0], tokens[1]);
}

// The fake's greedy continuation of `prompt`, to pick stop tokens that occur.
std::vector<int32_t> expected(const std::vector<int32_t>& prompt, int n) { return fake_greedy(prompt, kVocab, n); }

TEST(Engine, StopTokenIdsEosMinTokensIgnoreEos) {
  std::mt19937 rng(7);
  auto prompt = random_tokens(rng, 6);
  auto ref = expected(prompt, 30);
  int32_t third = ref[2];
  size_t first_at = std::find(ref.begin(), ref.end(), third) - ref.begin();
  {
    EngineConfig c = config();
    c.eos_token_ids = {third};
    Harness h(c, kVocab, 64, 4);
    ASSERT_TRUE(h.add("eos", prompt, greedy(30)).ok());
    SamplingParams ig = greedy(30);
    ig.ignore_eos = true;
    ASSERT_TRUE(h.add("ignore", prompt, ig).ok());
    h.run();
    EXPECT_EQ(h.result("eos").finish[0], FinishReason::kStop);
    EXPECT_EQ(h.result("eos").tokens[0], std::vector<int32_t>(ref.begin(), ref.begin() + first_at + 1));
    EXPECT_EQ(h.result("ignore").tokens[0], ref);
    EXPECT_EQ(h.result("ignore").finish[0], FinishReason::kLength);
  }
  {
    Harness h(config(), kVocab, 64, 4);
    SamplingParams p = greedy(30);
    p.stop_token_ids = {third};
    ASSERT_TRUE(h.add("stopid", prompt, p).ok());
    p.min_tokens = static_cast<int>(first_at) + 2;  // the stop id is banned before that
    ASSERT_TRUE(h.add("min", prompt, p).ok());
    h.run();
    EXPECT_EQ(h.result("stopid").tokens[0].size(), first_at + 1);
    auto& m = h.result("min").tokens[0];
    EXPECT_GE(m.size(), static_cast<size_t>(p.min_tokens));
    for (int i = 0; i < p.min_tokens; ++i) EXPECT_NE(m[i], third) << i;
  }
}

TEST(Engine, StopStringsAreCutAndHeldBack) {
  std::mt19937 rng(8);
  auto prompt = random_tokens(rng, 6);
  auto ref = expected(prompt, 20);
  std::string full;
  for (int32_t t : ref) full += fake_piece(t);
  // A stop string made of the text of outputs 5 and 6.
  std::string before;
  for (int i = 0; i < 5; ++i) before += fake_piece(ref[i]);
  std::string stop = fake_piece(ref[5]) + fake_piece(ref[6]);
  ASSERT_EQ(full.find(stop), before.size()) << "pick another seed";
  Harness h(config(), kVocab, 64, 4, /*with_text=*/true);
  SamplingParams p = greedy(20);
  p.stop = {stop, "never-appears-in-output"};
  ASSERT_TRUE(h.add("s", prompt, p).ok());
  ASSERT_TRUE(h.add("plain", prompt, greedy(20)).ok());
  h.run();
  EXPECT_EQ(h.result("s").text[0], before);
  EXPECT_EQ(h.result("s").finish[0], FinishReason::kStop);
  EXPECT_EQ(h.result("s").tokens[0].size(), 7u);
  EXPECT_EQ(h.result("plain").text[0], full);
}

TEST(StopChecker, HoldsBackOnlyAPossibleStartOfAStopString) {
  StopChecker s({"STOP", "\xc3\xa9t\xc3\xa9"});
  EXPECT_EQ(s.add("abcS", true), "abc");  // "S" could start "STOP"
  EXPECT_EQ(s.add("T", true), "");
  EXPECT_EQ(s.add("x\xc3\xa9", true), "STx");  // "\xc3\xa9" could start the second one
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.add("t", true), "");
  EXPECT_EQ(s.add("\xc3\xa9!", true), "");  // a multi-byte stop string matched
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.matched(), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(s.add("more", true), "");
  StopChecker t({"ab"});
  EXPECT_EQ(t.add("xxa", true), "xx");
  EXPECT_EQ(t.add("bzz", true), "");
  EXPECT_TRUE(t.stopped());
  StopChecker u({"STOP"});
  EXPECT_EQ(u.add("aST", true), "a");
  EXPECT_EQ(u.flush(true), "ST");  // end of stream: the held tail goes out
  StopChecker off({"ab"});  // before min_tokens: no stop and nothing held
  EXPECT_EQ(off.add("xab", false), "xab");
  EXPECT_EQ(off.add("ab", true), "");
  EXPECT_TRUE(off.stopped());
}

TEST(Engine, AbortFreesPagesAtOnce) {
  Harness h(config(), kVocab, 64, 4);
  std::mt19937 rng(9);
  ASSERT_TRUE(h.add("a", random_tokens(rng, 30), greedy(50)).ok());
  ASSERT_TRUE(h.add("b", random_tokens(rng, 30), greedy(3)).ok());
  ASSERT_TRUE(h.engine().step().ok());
  ASSERT_TRUE(h.engine().step().ok());
  EXPECT_GT(h.engine().kv().pool().num_active(), 0);
  EXPECT_TRUE(h.engine().abort_request("a"));
  EXPECT_FALSE(h.engine().abort_request("nope"));
  auto& a = h.result("a");
  EXPECT_EQ(a.finish[0], FinishReason::kAbort);
  EXPECT_EQ(a.num_done_events, 1);
  EXPECT_EQ(a.tokens[0].size(), 2u);
  h.run();
  EXPECT_EQ(a.num_events_after_done, 0);
  EXPECT_EQ(h.result("b").finish[0], FinishReason::kLength);
  EXPECT_EQ(h.engine().kv().pool().num_active(), 0);
}

TEST(Engine, RejectsBadRequestsWithReasons) {
  EngineConfig c = config();
  c.scheduler.max_model_len = 40;
  Harness h(c, kVocab, 64, 4);
  auto msg = [&](std::vector<int32_t> prompt, SamplingParams p) {
    Status st = h.add("bad", std::move(prompt), p);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    return st.message();
  };
  EXPECT_EQ(msg(std::vector<int32_t>(41, 1), greedy(1)), "prompt has 41 tokens, more than max_model_len 40");
  EXPECT_EQ(msg(std::vector<int32_t>(30, 1), greedy(11)),
            "prompt (30 tokens) + max_tokens (11) = 41 exceeds max_model_len 40");
  EXPECT_EQ(msg({}, greedy(1)), "prompt is empty (0 tokens)");
  EXPECT_EQ(msg({1, 64}, greedy(1)), "prompt token 1 is 64, outside the vocabulary [0, 64)");
  SamplingParams p = greedy(4);
  p.top_p = 0;
  EXPECT_EQ(msg({1}, p), "top_p 0 not in (0, 1]");
  p = greedy(4);
  p.stop = {"x"};
  EXPECT_EQ(msg({1}, p), "stop strings need a tokenizer; this engine has none (use stop_token_ids)");
  ASSERT_TRUE(h.add("ok", {1, 2}, greedy(2)).ok());
  EXPECT_EQ(h.add("ok", {1, 2}, greedy(2)).message(), "duplicate request_id 'ok'");
  // A KV pool smaller than max_model_len is refused at creation.
  EngineConfig big = config();
  big.scheduler.max_model_len = 1000;
  FakeModelRunner runner(kVocab, 10, 4);
  big.cache.page_size = 4;
  auto e = Engine::create(big, &runner, nullptr);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "max_model_len 1000 needs more than the KV pool's 10 pages of 4 tokens (40 tokens)");
}

TEST(Engine, LogprobsAreRawLogSoftmaxWithSortedAlternatives) {
  Harness h(config(), kVocab, 64, 4);
  std::vector<int32_t> prompt{3, 1, 4, 1, 5};
  SamplingParams p = greedy(2);
  p.logprobs = 3;
  p.temperature = 0.5f;
  p.seed = 9;
  ASSERT_TRUE(h.add("lp", prompt, p).ok());
  h.run();
  const auto& out = h.result("lp").outputs[0];
  ASSERT_EQ(out.size(), 2u);
  uint64_t hsh = XXH3_64bits(prompt.data(), prompt.size() * 4);
  double z = 0;
  for (int v = 0; v < kVocab; ++v) z += std::exp(FakeModelRunner::logit(hsh, v));
  EXPECT_NEAR(out[0].logprob, FakeModelRunner::logit(hsh, out[0].token_id) - std::log(z), 1e-4);
  ASSERT_EQ(out[0].top.size(), 3u);
  EXPECT_GE(out[0].top[0].logprob, out[0].top[1].logprob);
  EXPECT_GE(out[0].top[1].logprob, out[0].top[2].logprob);
  int best = 0;
  for (int v = 1; v < kVocab; ++v) if (FakeModelRunner::logit(hsh, v) > FakeModelRunner::logit(hsh, best)) best = v;
  EXPECT_EQ(out[0].top[0].token_id, best);
}

// A runner that fails on its n-th forward.
class FailingRunner : public FakeModelRunner {
 public:
  FailingRunner() : FakeModelRunner(kVocab, 16, 4) {}
  Status forward(const ForwardBatch& b, std::vector<float>* logits) override {
    if (num_forward_calls() == 2) return internal_error("device lost");
    return FakeModelRunner::forward(b, logits);
  }
};

TEST(Engine, RunnerErrorEndsEveryRequestWithError) {
  FailingRunner runner;
  EngineConfig c = config();
  c.cache.page_size = 4;
  auto e = Engine::create(c, &runner, nullptr);
  ASSERT_TRUE(e.ok());
  auto& engine = **e;
  std::vector<RequestEvent> events;
  for (int i = 0; i < 2; ++i) {
    GenerateRequest r;
    r.request_id = "r" + std::to_string(i);
    r.prompt_token_ids = {1, 2, 3};
    r.sampling = greedy(10);
    r.sink = [&](RequestEvent&& ev) { events.push_back(std::move(ev)); };
    ASSERT_TRUE(engine.add_request(std::move(r)).ok());
  }
  ASSERT_TRUE(engine.step().ok());
  ASSERT_TRUE(engine.step().ok());
  Status st = engine.step();
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_FALSE(engine.has_work());
  EXPECT_FALSE(engine.stats().healthy);
  int errors = 0;
  for (const auto& ev : events) {
    if (ev.finish == FinishReason::kError) {
      ++errors;
      EXPECT_TRUE(ev.request_done);
      EXPECT_EQ(ev.error, "model runner: INTERNAL: device lost");
    }
  }
  EXPECT_EQ(errors, 2);
  EXPECT_EQ(engine.kv().pool().num_active(), 0);
}

TEST(Engine, SlidingWindowModelMatchesReference) {
  Harness h(config(/*max_batched=*/16), kVocab, 24, 4, false, /*window=*/10);
  std::mt19937 rng(10);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 4; ++i) {
    prompts.push_back(random_tokens(rng, 20 + i * 7));
    ASSERT_TRUE(h.add("w" + std::to_string(i), prompts.back(), greedy(40)).ok());
  }
  int max_active = 0;
  while (h.engine().has_work()) {
    ASSERT_TRUE(h.engine().step().ok());
    max_active = std::max(max_active, h.engine().kv().pool().num_active());
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(h.result("w" + std::to_string(i)).tokens[0], fake_greedy(prompts[i], kVocab, 40, 10)) << i;
  }
  // Without freeing, 4 sequences of up to 81 tokens would need 4 * 21 pages > 24.
  EXPECT_LE(max_active, 24);
}

TEST(Engine, WithdrawnPagesPreemptHoldersAndShrinkThePool) {
  EngineConfig c = config();
  Harness h(c, kVocab, 16, 4, false, 0, /*capacity=*/24);
  std::mt19937 rng(11);
  auto p0 = random_tokens(rng, 9), p1 = random_tokens(rng, 9);
  ASSERT_TRUE(h.add("a", p0, greedy(20)).ok());
  ASSERT_TRUE(h.add("b", p1, greedy(20)).ok());
  ASSERT_TRUE(h.engine().step().ok());
  std::vector<int32_t> ids(8);
  std::iota(ids.begin(), ids.end(), 0);  // pages 0..7, held by a and b
  EXPECT_EQ(h.engine().scheduler().withdraw_pages(ids), 0);  // holders preempted, pages offline
  EXPECT_EQ(h.engine().kv().pool().num_online(), 8);
  EXPECT_EQ(h.engine().scheduler().num_running(), 0);
  std::vector<int32_t> more{16, 17, 18, 19, 20, 21, 22, 23};
  h.engine().scheduler().add_pages(more);
  h.run();
  EXPECT_EQ(h.result("a").tokens[0], fake_greedy(p0, kVocab, 20));
  EXPECT_EQ(h.result("b").tokens[0], fake_greedy(p1, kVocab, 20));
  for (int32_t id : ids) EXPECT_EQ(h.engine().kv().pool().state(id), BlockPool::State::kOffline);
}

TEST(Engine, ASequenceThatCanNoLongerFitFailsWithAReason) {
  Harness h(config(), kVocab, 16, 4);
  ASSERT_TRUE(h.add("big", std::vector<int32_t>(30, 2), greedy(20)).ok());
  ASSERT_TRUE(h.engine().step().ok());
  std::vector<int32_t> ids(12);
  std::iota(ids.begin(), ids.end(), 4);
  h.engine().scheduler().withdraw_pages(ids);  // 4 pages left: 16 tokens < 31
  h.run();
  auto& r = h.result("big");
  EXPECT_EQ(r.finish[0], FinishReason::kError);
  EXPECT_EQ(r.done_event.error, "sequence needs 8 KV pages of 4 tokens but the pool has only 4 online");
}

}  // namespace
}  // namespace tandem::testing
