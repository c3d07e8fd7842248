// Test double of the Tokenizer contract: one token per byte (ids 0..255) plus
// four special tokens. Exact round trip, no files: lets server tests predict
// every token count and text.
#pragma once

#include "tokenizer/tokenizer.h"

namespace tandem::testing {

class ByteTokenizer : public Tokenizer {
 public:
  static constexpr int32_t kBos = 256;       // "<s>"
  static constexpr int32_t kEos = 257;       // "</s>"
  static constexpr int32_t kImStart = 258;   // "<|im_start|>"
  static constexpr int32_t kImEnd = 259;     // "<|im_end|>"
  static constexpr int32_t kVocab = 260;

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return kVocab; }
  bool is_special(int32_t id) const override { return id >= 256 && id < kVocab; }
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  std::optional<std::string> bos_token() const override { return "<s>"; }
  std::optional<std::string> eos_token() const override { return "</s>"; }
  std::optional<std::string> chat_template() const override;
  std::vector<NamedChatTemplate> chat_templates() const override { return {{"default", *chat_template()}}; }
};

}  // namespace tandem::testing
