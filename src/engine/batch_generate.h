// Many prompts at once through one engine, results in input order (what
// `tandem generate --prompt-ids-file` prints).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/api.h"

namespace tandem {

struct BatchResult {
  std::vector<std::vector<TokenOutput>> tokens;  // per choice
  std::vector<std::string> text;                 // per choice (empty without a tokenizer)
  std::vector<FinishReason> finish;              // per choice
  std::string error;                             // when a choice ended with kError
  int num_prompt_tokens = 0;
  int num_cached_prompt_tokens = 0;
  int num_output_tokens = 0;
};

// Submits every prompt (ids "p0", "p1", ...) before waiting, then waits for
// all. A submit error is returned as "prompt K: <message>" (K from 0), after
// aborting what was already submitted.
StatusOr<std::vector<BatchResult>> generate_batch(EngineClient& engine,
                                                  const std::vector<std::vector<int32_t>>& prompts,
                                                  const SamplingParams& params);

// One prompt per line, token ids separated by spaces (or commas). Blank lines
// are errors, except trailing ones. Errors name the file and line:
// "prompts.txt:3: 'x7' is not a token id".
StatusOr<std::vector<std::vector<int32_t>>> parse_prompt_ids(std::string_view text, const std::string& file_name);

}  // namespace tandem
