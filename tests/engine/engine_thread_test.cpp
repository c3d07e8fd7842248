// EngineThread: submissions and aborts from other threads, queue limits,
// validation errors, shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "engine/engine_thread.h"
#include "engine_harness.h"

namespace tandem::testing {
namespace {

constexpr int kVocab = 64;

// A fake runner whose forward() can be held at a gate. The gate can shut
// itself after a number of passes, so a test stops the engine at an exact step
// however fast or slow the engine thread runs.
class GatedRunner : public FakeModelRunner {
 public:
  GatedRunner() : FakeModelRunner(kVocab, 256, 4) {}
  Status forward(const ForwardBatch& b, std::vector<float>* logits) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (passes_left_ == 0) open_ = false;
    if (passes_left_ > 0) --passes_left_;
    if (!open_) {
      waiting_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      waiting_ = false;
    }
    lock.unlock();
    return FakeModelRunner::forward(b, logits);
  }
  void close() { close_after(0); }
  // The next `passes` forward calls go through; the one after waits.
  void close_after(int passes) {
    std::lock_guard<std::mutex> l(mu_);
    passes_left_ = passes;
    if (passes == 0) open_ = false;
  }
  void open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    passes_left_ = -1;
    cv_.notify_all();
  }
  // Returns once a forward() call is held at the shut gate.
  void wait_entered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return waiting_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int passes_left_ = -1;  // -1: no limit
  bool waiting_ = false;
};

// Collects one request's events from the engine thread.
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kNone;
  bool done = false;
  int num_events = 0;
  EventSink sink() {
    return [this](RequestEvent&& ev) {
      std::lock_guard<std::mutex> l(mu);
      ++num_events;
      for (auto& t : ev.tokens) tokens.push_back(t.token_id);
      if (ev.finish != FinishReason::kNone) finish = ev.finish;
      if (ev.request_done) done = true;
      cv.notify_all();
    };
  }
  void wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
  }
  void wait_tokens(size_t n) {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done || tokens.size() >= n; });
  }
};

GenerateRequest request(const std::string& id, std::vector<int32_t> prompt, int max_tokens, Waiter* w) {
  GenerateRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.sampling = greedy(max_tokens);
  r.sink = w->sink();
  return r;
}

EngineConfig thread_config() {
  EngineConfig c;
  c.cache.page_size = 4;
  c.scheduler.max_num_seqs = 16;
  c.scheduler.max_num_batched_tokens = 64;
  c.seed = 5;
  return c;
}

// Also with overlapped steps (greedy on a sampling backend, each step queued
// before the last one's draws are read), submissions arriving meanwhile.
void many_submitters(bool overlap) {
  auto cpu = make_cpu_backend(1);
  FakeModelRunner runner(kVocab, 256, 4);
  if (overlap) {
    runner.set_sampling_backend(cpu.get());
    runner.set_overlap(true);
  }
  auto t = EngineThread::start(thread_config(), &runner, nullptr);
  ASSERT_TRUE(t.ok());
  auto& engine = **t;
  constexpr int kThreads = 4, kPer = 12;
  std::vector<std::unique_ptr<Waiter>> waiters(kThreads * kPer);
  std::vector<std::vector<int32_t>> prompts(kThreads * kPer);
  for (int i = 0; i < kThreads * kPer; ++i) {
    waiters[i] = std::make_unique<Waiter>();
    for (int k = 0; k < 3 + i % 7; ++k) prompts[i].push_back((i * 7 + k * 3) % kVocab);
  }
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      for (int j = 0; j < kPer; ++j) {
        int i = th * kPer + j;
        Status st = engine.submit(request("r" + std::to_string(i), prompts[i], 5 + i % 9, waiters[i].get()));
        EXPECT_TRUE(st.ok()) << st.to_string();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < kThreads * kPer; ++i) {
    waiters[i]->wait();
    EXPECT_EQ(waiters[i]->tokens, fake_greedy(prompts[i], kVocab, 5 + i % 9)) << i;
    EXPECT_EQ(waiters[i]->finish, FinishReason::kLength);
  }
  // One forward per step (the stats snapshot trails the last sink by a moment).
  for (int i = 0; i < 1000 && engine.stats().num_steps != runner.num_forward_calls(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(runner.num_forward_calls(), engine.stats().num_steps);
  if (overlap) EXPECT_GT(runner.num_overlapped(), 0);
}

TEST(EngineThread, ManySubmittersGetTheirOwnCorrectOutputs) { many_submitters(false); }
TEST(EngineThread, ManySubmittersWithOverlappedSteps) { many_submitters(true); }

TEST(EngineThread, AbortFromAnotherThreadFreesPagesWithinAStep) {
  GatedRunner runner;
  auto t = EngineThread::start(thread_config(), &runner, nullptr);
  ASSERT_TRUE(t.ok());
  auto& engine = **t;
  Waiter w;
  runner.close_after(3);
  ASSERT_TRUE(engine.submit(request("long", {1, 2, 3}, 1000, &w)).ok());
  runner.wait_entered();  // the engine is inside its fourth step
  size_t before;
  {
    std::lock_guard<std::mutex> l(w.mu);
    before = w.tokens.size();
  }
  EXPECT_EQ(before, 3u);
  std::thread([&] { engine.abort("long"); }).join();
  runner.open();
  w.wait();
  EXPECT_EQ(w.finish, FinishReason::kAbort);
  EXPECT_LE(w.tokens.size(), before + 1);  // the step in flight finishes; no other runs
  // The stats snapshot follows the step that handled the abort.
  for (int i = 0; i < 1000 && engine.stats().num_pages_used != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(engine.stats().num_pages_used, 0);
  engine.abort("unknown-id");  // harmless
}

TEST(EngineThread, QueueLimitAndValidationErrors) {
  GatedRunner runner;
  EngineConfig c = thread_config();
  c.scheduler.max_queue_len = 2;
  c.scheduler.max_model_len = 100;
  auto t = EngineThread::start(c, &runner, nullptr);
  ASSERT_TRUE(t.ok());
  auto& engine = **t;
  EXPECT_EQ(engine.max_model_len(), 100);
  Waiter first, a, b, c2;
  runner.close();
  ASSERT_TRUE(engine.submit(request("first", {1}, 3, &first)).ok());
  runner.wait_entered();  // the engine thread is now inside forward()
  ASSERT_TRUE(engine.submit(request("a", {1}, 3, &a)).ok());
  ASSERT_TRUE(engine.submit(request("b", {2}, 3, &b)).ok());
  Status full = engine.submit(request("c", {3}, 3, &c2));
  EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(full.message(), "request queue is full: 2 requests waiting (max_queue_len 2)");
  Status dup = engine.submit(request("a", {1}, 3, &c2));
  EXPECT_EQ(dup.code(), StatusCode::kResourceExhausted);  // the queue check comes first
  Status too_long = engine.submit(request("x", std::vector<int32_t>(101, 1), 1, &c2));
  EXPECT_EQ(too_long.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(too_long.message(), "prompt has 101 tokens, more than max_model_len 100");
  runner.open();
  first.wait();
  a.wait();
  b.wait();
  Status dup_done = engine.submit(request("a", {1}, 3, &c2));  // "a" finished: the id is free again
  EXPECT_TRUE(dup_done.ok());
  c2.wait();
  EXPECT_EQ(c2.tokens.size(), 3u);
}

TEST(EngineThread, DuplicateIdInFlightIsRejected) {
  GatedRunner runner;
  auto t = EngineThread::start(thread_config(), &runner, nullptr);
  ASSERT_TRUE(t.ok());
  Waiter w, w2;
  runner.close();
  ASSERT_TRUE((*t)->submit(request("same", {1}, 3, &w)).ok());
  Status dup = (*t)->submit(request("same", {1}, 3, &w2));
  EXPECT_EQ(dup.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dup.message(), "duplicate request_id 'same' is still in flight");
  runner.open();
  w.wait();
}

// Each step takes 2 ms, so the 1000-token request is still running (by ~2 s)
// when the test destroys the engine, however the test thread is scheduled.
class SlowRunner : public FakeModelRunner {
 public:
  SlowRunner() : FakeModelRunner(kVocab, 256, 4) {}
  Status forward(const ForwardBatch& b, std::vector<float>* logits) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return FakeModelRunner::forward(b, logits);
  }
};

TEST(EngineThread, ShutdownAbortsWhatIsInFlight) {
  Waiter w;
  {
    SlowRunner runner;
    auto t = EngineThread::start(thread_config(), &runner, nullptr);
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE((*t)->submit(request("long", {1, 2}, 1000, &w)).ok());
    w.wait_tokens(1);
  }  // destroyed here, before the runner
  EXPECT_TRUE(w.done);
  EXPECT_EQ(w.finish, FinishReason::kAbort);
}

}  // namespace
}  // namespace tandem::testing
