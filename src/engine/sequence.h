// Request and Sequence: the engine's per-request state. A request with n
// choices starts as one sequence (choice 0) for the prompt; once the prompt is
// prefilled the other n-1 choices are forked from it, sharing its pages.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/api.h"
#include "engine/stop_checker.h"
#include "engine/text_decoder.h"
#include "kv/kv_cache_manager.h"

namespace tandem {

struct Request;

enum class SeqStatus { kWaiting, kRunning, kFinished };

struct Sequence {
  Request* request = nullptr;
  int choice_index = 0;
  int64_t order = 0;             // FCFS key: (arrival, choice); the largest is the newest
  std::vector<int32_t> tokens;   // prompt, then generated ids
  int num_prompt_tokens = 0;
  int num_computed = 0;          // tokens whose K/V are in the cache
  SeqKv kv;
  SeqStatus status = SeqStatus::kWaiting;
  FinishReason finish = FinishReason::kNone;
  std::string error;

  // Output side: what the next event carries.
  std::unique_ptr<StreamDecoder> decoder;  // null when the engine has no tokenizer
  std::unique_ptr<StopChecker> stop;
  std::vector<TokenOutput> pending_tokens;
  std::string pending_text;
  bool touched = false;  // has something to deliver after this step

  int num_outputs() const { return static_cast<int>(tokens.size()) - num_prompt_tokens; }
  int num_uncomputed() const { return static_cast<int>(tokens.size()) - num_computed; }
};

struct Request {
  std::string request_id;
  SamplingParams sampling;
  EventSink sink;
  uint64_t seed = 0;            // the request's seed, or one drawn by the engine
  int64_t arrival = 0;          // submission counter
  std::vector<std::unique_ptr<Sequence>> seqs;  // choices that exist so far
  bool forked = false;          // all n choices exist
  int num_finished = 0;
  int num_cached_prompt_tokens = -1;  // set at first admission
};

}  // namespace tandem
