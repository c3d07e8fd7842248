// Test double of the EngineClient contract, for server tests only (never linked
// into `tandem`): a real step loop on its own thread with a waiting queue, a
// running batch, KV page accounting, aborts within one step, n choices, stop
// strings, stop token ids, logprobs and usage — but the "model" is a rule:
//   greedy (temperature 0): output token j is the j-th non-special prompt byte,
//     cyclically; after one full pass it emits EOS (unless ignore_eos / min_tokens).
//   sampled: a seeded lower-case letter per step (same seed, same text).
// Fault injection: a prompt containing "__fail_request__" fails that request
// (finish kError); "__fail_engine__" marks the whole engine unhealthy.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "engine/api.h"
#include "tokenizer/tokenizer.h"

namespace tandem::testing {

struct EchoEngineOptions {
  int max_model_len = 2048;
  int max_num_seqs = 256;     // running choices
  int max_queue = 1024;       // waiting requests before kResourceExhausted
  int num_pages = 16384;
  int page_size = 16;
  int step_us = 2000;         // time per engine step
  std::vector<int32_t> eos_ids;
};

class EchoEngine : public EngineClient {
 public:
  EchoEngine(const Tokenizer* tokenizer, EchoEngineOptions options);
  ~EchoEngine() override;

  Status submit(GenerateRequest request) override;
  void abort(const std::string& request_id) override;
  EngineStats stats() const override;
  int max_model_len() const override { return options_.max_model_len; }

 private:
  struct Choice {
    std::vector<int32_t> output;
    std::string text;          // decoded output
    size_t emitted = 0;        // bytes of `text` already delivered
    int num_pages = 0;
    FinishReason finish = FinishReason::kNone;
    uint64_t rng = 0;
  };
  struct Group {
    GenerateRequest request;
    std::vector<int32_t> source;  // the bytes being echoed
    std::vector<Choice> choices;
    bool fail = false;
  };

  void loop();
  // One step for one group; appends events. Returns true when the group is done.
  bool step_group(Group& g, std::vector<std::pair<EventSink*, RequestEvent>>* out);
  int pages_for(int tokens) const { return (tokens + options_.page_size - 1) / options_.page_size; }

  const Tokenizer* tokenizer_;
  const EchoEngineOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Group>> waiting_;   // GUARDED_BY(mutex_)
  std::vector<std::unique_ptr<Group>> running_;  // owned by the loop thread
  std::unordered_set<std::string> aborts_;       // GUARDED_BY(mutex_)
  EngineStats stats_;                            // GUARDED_BY(mutex_)
  int running_choices_ = 0;                      // GUARDED_BY(mutex_)
  uint64_t seed_counter_ = 0x1234;               // GUARDED_BY(mutex_)
  bool stop_ = false;                            // GUARDED_BY(mutex_)
  std::thread thread_;
};

}  // namespace tandem::testing
