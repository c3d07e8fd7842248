// What the tokenizer uses from tokenizer_config.json (and chat_template.jinja).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "tokenizer/tokenizer.h"

namespace tandem {

struct TokenizerConfig {
  std::optional<std::string> bos_token;  // string or {"content": ...}; null = none
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;     // absent = keep tokenizer.json's post-processor
  std::optional<bool> add_eos_token;
  std::string tokenizer_class;
  std::vector<NamedChatTemplate> chat_templates;
};

// Reads DIR/tokenizer_config.json when present (a missing file gives an empty
// config) and DIR/chat_template.jinja when the config has no template.
StatusOr<TokenizerConfig> load_tokenizer_config(const std::filesystem::path& dir);

StatusOr<std::string> read_file(const std::filesystem::path& path);

}  // namespace tandem
