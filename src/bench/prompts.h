// The requests of a run: which model each goes to, its prompt (synthetic at an
// exact token length, or from a JSONL dataset), its max_tokens, and when it arrives.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/http.h"
#include "bench/options.h"
#include "common/status.h"
#include "tokenizer/tokenizer.h"

namespace tandem::bench {

struct PlannedRequest {
  int model_index = 0;
  int prompt_len = 0;   // tokens as the tokenizer counted them; 0 when unknown (datasets)
  bool off_target = false;  // synthetic prompt whose length missed its sampled target
  int max_tokens = 0;
  std::string body;     // the JSON request body
};

// Counts the tokens the server will see for a prompt (with its default special tokens).
class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  virtual StatusOr<int> count(const std::string& model, const std::string& text) = 0;
};

// POST /tokenize as vLLM's ({"model","prompt"} -> {"tokens","count"}); falls back
// to llama.cpp's ({"content"} -> {"tokens"}) when the first shape is refused.
class ServerTokenCounter : public TokenCounter {
 public:
  ServerTokenCounter(ServerAddress address, std::string api_key, double timeout_s)
      : address_(std::move(address)), api_key_(std::move(api_key)), timeout_s_(timeout_s) {}
  StatusOr<int> count(const std::string& model, const std::string& text) override;

 private:
  ServerAddress address_;
  std::string api_key_;
  double timeout_s_;
  bool llama_cpp_shape_ = false;
};

// Counts with local tokenizers (src/tokenizer), with special tokens as the
// server adds them by default: one tokenizer for every model, or one per model.
class LocalTokenCounter : public TokenCounter {
 public:
  // PATHS: tokenizer folders or tokenizer.json files; MODELS: the --model names.
  static StatusOr<std::unique_ptr<LocalTokenCounter>> load(const std::vector<std::string>& paths,
                                                           const std::vector<std::string>& models);
  StatusOr<int> count(const std::string& model, const std::string& text) override;

 private:
  std::vector<std::string> models_;
  std::vector<std::unique_ptr<Tokenizer>> tokenizers_;  // one, or one per model
};

// Exactly num_prompts model indices with counts proportional to `weights`
// (largest remainders), in a seeded random order.
std::vector<int> assign_models(int num_prompts, const std::vector<double>& weights, std::mt19937_64& rng);

// Arrival offsets in seconds: the first at 0, then gamma-distributed gaps with
// shape = burstiness and mean 1/rate (Poisson when burstiness is 1), as vLLM.
// An infinite rate puts every arrival at 0.
std::vector<double> arrival_times(int num_prompts, double rate, double burstiness, uint64_t seed);

// Lengths uniform on [floor(L(1-r)), ceil(L(1+r))], at least 1, as vLLM's random dataset.
std::vector<int> sample_lengths(int n, int len, double range_ratio, std::mt19937_64& rng);

// A prompt of random common words whose token count is exactly `target` by
// `counter`; `*actual` gets the count reached (equal to target unless the
// tokenizer makes it impossible, then the nearest below).
StatusOr<std::string> build_prompt(TokenCounter& counter, const std::string& model, int target,
                                   std::mt19937_64& rng, int* actual);

// The JSON body of one streamed request. `prompt` is a string for completions;
// for chat it is a messages array (a string becomes one user message).
std::string request_body(const BenchOptions& options, const std::string& model, const nlohmann::json& prompt,
                         int max_tokens);

// Synthetic requests at --input-len/--output-len/--range-ratio.
StatusOr<std::vector<PlannedRequest>> plan_synthetic(const BenchOptions& options, TokenCounter& counter);
// Requests from a JSONL file, one {"prompt"|"messages", "max_tokens"} object a
// line (max_tokens defaults to --output-len); num_prompts taken in file order,
// wrapping around when the file is shorter.
StatusOr<std::vector<PlannedRequest>> plan_dataset(const BenchOptions& options);

}  // namespace tandem::bench
