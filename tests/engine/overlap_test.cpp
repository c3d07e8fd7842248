// Overlapped steps (ModelRunner::overlaps_steps): the engine queues step k + 1
// before it has read step k's draws, which step k + 1 takes on the device
// (ForwardBatch::sampled_prefix). FakeModelRunner refuses a prefix once the host
// has read the draws, and writes the draws it substitutes into its KV slots, so
// a wrong order, a stale draw or a lost placeholder changes the tokens. Every
// scenario must give exactly the tokens, text and finish reasons of the same
// engine reading each step's tokens before the next.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "engine_harness.h"

namespace tandem::testing {
namespace {

constexpr int kVocab = 96;

EngineConfig config(int max_seqs = 16) {
  EngineConfig c;
  c.scheduler.max_num_batched_tokens = 48;
  c.scheduler.max_num_seqs = max_seqs;
  c.seed = 77;
  c.eos_token_ids = {5};
  return c;
}

std::vector<int32_t> prompt(int seed, int len) {
  std::mt19937 rng(seed);
  std::vector<int32_t> p(len);
  for (auto& t : p) t = static_cast<int32_t>(rng() % kVocab);
  return p;
}

struct Arrival {
  int at_step;
  std::string id;
  std::vector<int32_t> prompt;
  SamplingParams params;
};

// Runs `arrivals` on a harness (overlap on or off), calling `between(step, h)`
// before each step; returns every request's result.
std::map<std::string, Result> run(const std::vector<Arrival>& arrivals, bool overlap, int num_pages,
                                  int64_t* overlapped, const std::function<void(int, Harness&)>& between = {}) {
  auto cpu = make_cpu_backend(1);
  Harness h(config(), kVocab, num_pages, 4, /*with_text=*/true);
  h.runner().set_sampling_backend(cpu.get());
  h.runner().set_overlap(overlap);
  size_t next = 0;
  for (int step = 0; step < 5000; ++step) {
    while (next < arrivals.size() && arrivals[next].at_step <= step) {
      const Arrival& a = arrivals[next++];
      EXPECT_TRUE(h.add(a.id, a.prompt, a.params).ok());
    }
    if (between) between(step, h);
    if (!h.engine().has_work() && next == arrivals.size()) break;
    if (!h.engine().has_work()) continue;
    Status st = h.engine().step();
    EXPECT_TRUE(st.ok()) << st.to_string();
    if (!st.ok()) break;
  }
  EXPECT_FALSE(h.engine().has_work());
  EXPECT_EQ(h.engine().kv().pool().num_active(), 0);  // every page back
  *overlapped = h.runner().num_overlapped();
  return h.results();
}

void expect_same(const std::map<std::string, Result>& a, const std::map<std::string, Result>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [id, ra] : a) {
    const Result& rb = b.at(id);
    EXPECT_EQ(ra.tokens, rb.tokens) << id;
    EXPECT_EQ(ra.text, rb.text) << id;
    EXPECT_EQ(ra.finish, rb.finish) << id;
    EXPECT_EQ(ra.num_done_events, 1) << id;
    EXPECT_EQ(rb.num_done_events, 1) << id;
    EXPECT_EQ(rb.num_events_after_done, 0) << id;
  }
}

// Both runs, compared; returns the overlapped one and how many forwards
// each overlapped.
struct Compared {
  std::map<std::string, Result> on;
  int64_t overlapped_off = 0, overlapped_on = 0;
};
Compared compare(const std::vector<Arrival>& arrivals, int num_pages,
                 const std::function<void(int, Harness&)>& between = {}) {
  Compared c;
  const auto off = run(arrivals, false, num_pages, &c.overlapped_off, between);
  c.on = run(arrivals, true, num_pages, &c.overlapped_on, between);
  expect_same(off, c.on);
  EXPECT_EQ(c.overlapped_off, 0);
  return c;
}

std::vector<Arrival> mixed_arrivals() {
  std::vector<Arrival> v;
  auto g = [](int max_tokens) { return greedy(max_tokens); };
  v.push_back({0, "long", prompt(1, 9), g(40)});
  v.push_back({0, "eos", prompt(2, 6), g(60)});  // ends on token 5 if drawn
  SamplingParams stop = g(50);
  stop.stop = {"c", " Q"};  // stop strings: text-level ends
  v.push_back({2, "stopstr", prompt(3, 5), stop});
  SamplingParams min = g(30);
  min.min_tokens = 12;  // eos banned for 12 tokens
  v.push_back({3, "min", prompt(4, 7), min});
  SamplingParams pen = g(20);
  pen.repetition_penalty = 1.3f;  // counts output ids: never drawn ahead
  v.push_back({5, "penalty", prompt(5, 8), pen});
  SamplingParams two = g(15);
  two.n = 2;  // forks after the prompt: never drawn ahead
  v.push_back({6, "two", prompt(6, 6), two});
  SamplingParams stopid = g(45);
  stopid.stop_token_ids = {17, 40};
  v.push_back({9, "stopid", prompt(7, 11), stopid});
  v.push_back({14, "short", prompt(8, 3), g(2)});
  v.push_back({14, "one", prompt(9, 4), g(1)});
  for (int i = 0; i < 6; ++i) v.push_back({20 + 3 * i, "late" + std::to_string(i), prompt(20 + i, 5 + i), g(10 + 4 * i)});
  return v;
}

TEST(Overlap, SameTokensAsStepByStep) {
  const Compared c = compare(mixed_arrivals(), 256);
  const auto& on = c.on;
  EXPECT_GT(c.overlapped_on, 20);  // most decode steps ran ahead of the host
  // The fake model's own greedy continuation, for the plain requests.
  EXPECT_EQ(on.at("long").tokens[0], fake_greedy(prompt(1, 9), kVocab, 40, 0, {5}));
  EXPECT_EQ(on.at("late5").tokens[0], fake_greedy(prompt(25, 10), kVocab, 30, 0, {5}));
}

// A KV pool too small for everyone: the scheduler preempts sequences whose
// draws are in flight (their recompute must see the real ids), and the step
// falls back to reading the draws first.
TEST(Overlap, PreemptionUnderOverlap) {
  EXPECT_GT(compare(mixed_arrivals(), 24).overlapped_on, 0);
}

// Aborting a request between steps while its draw is in flight: the draw is
// taken first, the other requests go on unchanged.
TEST(Overlap, AbortWhileADrawIsInFlight) {
  std::vector<Arrival> v;
  v.push_back({0, "keep", prompt(31, 7), greedy(30)});
  v.push_back({0, "drop", prompt(32, 9), greedy(30)});
  auto abort_at_8 = [](int step, Harness& h) {
    if (step == 8) EXPECT_TRUE(h.engine().abort_request("drop"));
  };
  const Compared c = compare(v, 64, abort_at_8);
  EXPECT_EQ(c.on.at("drop").finish[0], FinishReason::kAbort);
  EXPECT_EQ(c.on.at("keep").tokens[0], fake_greedy(prompt(31, 7), kVocab, 30, 0, {5}));
  EXPECT_GT(c.overlapped_on, 0);
}

}  // namespace
}  // namespace tandem::testing
