// What callers (server, CLI) see of an engine: submit a request with a sink for
// its events, abort it, read stats. The engine runs on its own thread; sinks are
// called on that thread and must not block (post the work elsewhere).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "memory/arbiter_stats.h"

namespace tandem {

struct SamplingParams {
  float temperature = 1.0f;          // 0 = greedy
  float top_p = 1.0f;                // (0, 1]
  int top_k = -1;                    // -1 or 0 = off
  float min_p = 0.0f;                // [0, 1]
  float repetition_penalty = 1.0f;   // > 0; 1 = off (HF/vLLM: divides positive logits)
  float presence_penalty = 0.0f;     // [-2, 2] (OpenAI)
  float frequency_penalty = 0.0f;    // [-2, 2]
  std::optional<uint64_t> seed;      // per-request RNG; same output whatever the batch
  int max_tokens = 16;               // new tokens per choice
  int min_tokens = 0;                // eos/stop ignored before this many
  bool ignore_eos = false;
  std::vector<std::string> stop;     // stop strings (not included in the output)
  std::vector<int32_t> stop_token_ids;
  int logprobs = -1;                 // -1: none; k >= 0: sampled token logprob plus top-k
  int n = 1;                         // choices sharing the prompt's pages
  bool skip_special_tokens = true;   // for the detokenized text
};

enum class FinishReason { kNone, kStop, kLength, kAbort, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "abort", "error"

struct TopLogprob {
  int32_t token_id;
  float logprob;
};

struct TokenOutput {
  int32_t token_id;
  float logprob = 0.0f;               // of the sampled token (when logprobs >= 0)
  std::vector<TopLogprob> top;        // best `logprobs` alternatives, highest first
};

// One delivery to a request's sink: new tokens of one choice since the last event.
struct RequestEvent {
  int choice_index = 0;               // 0 .. n-1
  std::vector<TokenOutput> tokens;
  std::string text;                   // newly completed UTF-8; stop strings held back, never split
  FinishReason finish = FinishReason::kNone;
  std::string error;                  // set when finish == kError
  bool request_done = false;          // true on the last event of the whole request
  // Usage, filled on the request_done event.
  int num_prompt_tokens = 0;
  int num_cached_prompt_tokens = 0;   // prompt tokens served from the prefix cache
  int num_output_tokens = 0;          // over all choices
};

using EventSink = std::function<void(RequestEvent&&)>;

struct GenerateRequest {
  std::string request_id;              // unique per engine
  std::vector<int32_t> prompt_token_ids;
  SamplingParams sampling;
  EventSink sink;
};

struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;
  int num_pages_total = 0;
  int num_pages_used = 0;
  int64_t num_preemptions = 0;
  int64_t num_prefix_query_tokens = 0;  // prompt tokens looked up in the prefix cache
  int64_t num_prefix_hit_tokens = 0;    // of those, found
  int64_t num_steps = 0;
  // Memory (docs/memory.md). weight_bytes: backend bytes of the weights (0: not known).
  int64_t weight_bytes = 0;
  // With the shared KV pool (`serve --gpu-budget`): pages guaranteed to this
  // model, lent to others out of its unused guarantee, borrowed above it.
  bool shared_kv = false;
  int64_t kv_pages_guaranteed = 0;
  int64_t kv_pages_lent = 0;
  int64_t kv_pages_borrowed = 0;
  // With the step arbiter (`serve --gpu-budget`, memory/arbiter.h): its counts for this model.
  std::optional<memory::ArbiterStats> arbiter;
  bool healthy = true;
  std::string last_error;
};

// Thread-safe facade of one model's engine.
class EngineClient {
 public:
  virtual ~EngineClient() = default;
  // kInvalidArgument: prompt empty or longer than max_model_len (message has both numbers);
  // kResourceExhausted: queue full; kUnavailable: unhealthy or draining.
  virtual Status submit(GenerateRequest request) = 0;
  // Frees the request's pages within one engine step; its sink gets a kAbort event.
  virtual void abort(const std::string& request_id) = 0;
  virtual EngineStats stats() const = 0;
  virtual int max_model_len() const = 0;
};

}  // namespace tandem
