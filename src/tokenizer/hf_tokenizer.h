// Tokenizer from an HF tokenizer.json (BPE model; byte-level or SentencePiece-style).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/hf_components.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace tandem::hf {

class HfTokenizer final : public Tokenizer {
 public:
  // `json_text`: contents of tokenizer.json (`name` is used in errors).
  static StatusOr<std::unique_ptr<HfTokenizer>> create(const std::string& json_text,
                                                       const std::string& name,
                                                       TokenizerConfig config);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  int32_t vocab_size() const override { return vocab_size_; }
  bool is_special(int32_t id) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int32_t id) const override;
  std::optional<std::string> bos_token() const override { return config_.bos_token; }
  std::optional<std::string> eos_token() const override { return config_.eos_token; }
  std::optional<std::string> chat_template() const override;
  std::vector<NamedChatTemplate> chat_templates() const override { return config_.chat_templates; }

 private:
  HfTokenizer() = default;
  void encode_text(std::string text, bool at_start, std::vector<int32_t>& out) const;
  const AddedToken* added(int32_t id) const;

  TokenizerConfig config_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;      // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer_;  // may be null
  std::unique_ptr<Decoder> decoder_;            // may be null: tokens joined by spaces
  PostProcessor post_;
  std::vector<AddedToken> added_tokens_;
  std::unordered_map<int32_t, size_t> added_by_id_;  // id -> index in added_tokens_
  StringIdMap added_by_content_;
  AddedTokenMatcher raw_matcher_;         // tokens with normalized = false
  AddedTokenMatcher normalized_matcher_;  // tokens with normalized = true
  int32_t vocab_size_ = 0;
};

}  // namespace tandem::hf
