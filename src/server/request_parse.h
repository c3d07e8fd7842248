// Parsing and validation of request bodies for the OpenAI endpoints and vLLM's
// /tokenize and /detokenize. Pure functions of the body text (no model state),
// so they are unit-tested and fuzzed on their own; checks that need the model
// (vocab size, context length) happen in the handlers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api.h"
#include "server/api_error.h"

namespace tandem::server {

// Limits a request must respect whatever the model (the model adds its own).
struct RequestLimits {
  int max_n = 128;              // choices per prompt
  int max_prompts = 1024;       // prompts in one /v1/completions request
  int max_logprobs = 20;        // completions `logprobs`, chat `top_logprobs`
  int max_stop = 16;            // stop strings
  int max_stop_token_ids = 256;
  int max_json_depth = 64;      // nesting of the body (deeper is refused before parsing)
};

enum class Endpoint { kCompletions, kChat };

// One prompt of /v1/completions: text or token ids.
struct PromptInput {
  bool is_tokens = false;
  std::string text;
  std::vector<int32_t> token_ids;
};

struct GenerationSpec {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  std::vector<PromptInput> prompts;   // completions: one or more
  // chat: [{role, content: string, name?, tool_calls?, tool_call_id?}] with list
  // content already joined into one string.
  nlohmann::json messages = nlohmann::json::array();
  bool add_generation_prompt = true;  // chat (vLLM extension)
  bool add_special_tokens = true;     // completions default true, chat default false
  SamplingParams sampling;            // n, logprobs (-1 = off), stop, ...
  bool max_tokens_given = false;      // else the handler picks the default
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  std::string user;
};

struct TokenizeSpec {
  std::string model;
  bool is_chat = false;
  std::string prompt;
  nlohmann::json messages = nlohmann::json::array();
  bool add_generation_prompt = true;
  bool add_special_tokens = true;
  bool return_token_strs = false;
};

struct DetokenizeSpec {
  std::string model;
  std::vector<int32_t> tokens;
};

ApiResult<GenerationSpec> parse_completion_request(std::string_view body, const RequestLimits& limits = {});
ApiResult<GenerationSpec> parse_chat_request(std::string_view body, const RequestLimits& limits = {});
ApiResult<TokenizeSpec> parse_tokenize_request(std::string_view body, const RequestLimits& limits = {});
ApiResult<DetokenizeSpec> parse_detokenize_request(std::string_view body, const RequestLimits& limits = {});

// Parses a JSON object body; refuses invalid JSON, non-objects and nesting
// deeper than max_depth with a 400 that says which.
ApiResult<nlohmann::json> parse_json_object(std::string_view body, int max_depth);

// The "model" string of a body (at most 128 bytes), or "" when the body has
// none: names the model in the log line of a request that failed validation.
std::string body_model_field(std::string_view body, const RequestLimits& limits = {});

}  // namespace tandem::server
