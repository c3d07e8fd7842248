// Test helpers: a synchronous Engine over FakeModelRunner collecting every
// request's events, and a fake TextDecoder.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "fake_model_runner.h"

namespace tandem::testing {

// Token v decodes to one character: 'a'..'z' for v < 26, "é" (2 bytes) for
// 26..35, else a space and a letter. Complete pieces only, like a real one.
inline std::string fake_piece(int32_t v) {
  if (v < 26) return std::string(1, static_cast<char>('a' + v));
  if (v < 36) return "\xc3\xa9";
  return std::string(" ") + static_cast<char>('A' + v % 26);
}

class FakeStreamDecoder : public StreamDecoder {
 public:
  std::string push(int32_t id) override { return fake_piece(id); }
  std::string finish() override { return {}; }
};

class FakeTextDecoder : public TextDecoder {
 public:
  std::unique_ptr<StreamDecoder> start(bool) const override { return std::make_unique<FakeStreamDecoder>(); }
};

struct Result {
  std::vector<std::vector<int32_t>> tokens;         // per choice
  std::vector<std::vector<TokenOutput>> outputs;    // per choice
  std::vector<std::string> text;                    // per choice
  std::vector<FinishReason> finish;                 // per choice
  int num_done_events = 0;
  RequestEvent done_event;                          // the request_done one
  int num_events_after_done = 0;
  bool done() const { return num_done_events > 0; }
};

class Harness {
 public:
  Harness(EngineConfig config, int vocab, int num_pages, int page_size, bool with_text = false, int window = 0,
          int capacity = -1)
      : runner_(vocab, capacity > 0 ? capacity : num_pages, page_size, window) {
    config.cache.page_size = page_size;
    config.cache.num_pages = num_pages;
    config.cache.sliding_window = window;
    auto e = Engine::create(config, &runner_, with_text ? &decoder_ : nullptr);
    EXPECT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(e).value();
  }

  Status add(const std::string& id, std::vector<int32_t> prompt, SamplingParams params) {
    GenerateRequest r;
    r.request_id = id;
    r.prompt_token_ids = std::move(prompt);
    r.sampling = std::move(params);
    Result* res = &results_[id];
    int n = r.sampling.n;
    res->tokens.resize(n);
    res->outputs.resize(n);
    res->text.resize(n);
    res->finish.assign(n, FinishReason::kNone);
    r.sink = [res](RequestEvent&& ev) {
      if (res->done()) ++res->num_events_after_done;
      auto& toks = res->tokens.at(ev.choice_index);
      for (const auto& t : ev.tokens) {
        toks.push_back(t.token_id);
        res->outputs[ev.choice_index].push_back(t);
      }
      res->text[ev.choice_index] += ev.text;
      if (ev.finish != FinishReason::kNone) res->finish[ev.choice_index] = ev.finish;
      if (ev.request_done) {
        ++res->num_done_events;
        res->done_event = ev;
      }
    };
    return engine_->add_request(std::move(r));
  }

  // Steps until no request is left (bounded).
  void run(int max_steps = 100000) {
    for (int i = 0; i < max_steps && engine_->has_work(); ++i) {
      Status st = engine_->step();
      ASSERT_TRUE(st.ok()) << st.to_string();
    }
    ASSERT_FALSE(engine_->has_work());
  }

  Engine& engine() { return *engine_; }
  FakeModelRunner& runner() { return runner_; }
  Result& result(const std::string& id) { return results_.at(id); }
  std::map<std::string, Result>& results() { return results_; }

 private:
  FakeModelRunner runner_;
  FakeTextDecoder decoder_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, Result> results_;
};

inline SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  return p;
}

}  // namespace tandem::testing
