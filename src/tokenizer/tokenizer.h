// A Hugging Face tokenizer loaded from tokenizer.json (+ tokenizer_config.json),
// or from a bare SentencePiece tokenizer.model. Thread-safe after load (const).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tandem {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // PATH: a folder (tokenizer.json, else tokenizer.model) or a tokenizer.json file.
  static StatusOr<std::unique_ptr<Tokenizer>> load(const std::string& path);

  // Invalid UTF-8 is replaced by U+FFFD first, as HF does.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;
  virtual int32_t vocab_size() const = 0;  // including added tokens
  virtual bool is_special(int32_t id) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;
  // From tokenizer_config.json where present.
  virtual std::optional<std::string> bos_token() const = 0;
  virtual std::optional<std::string> eos_token() const = 0;
  virtual std::optional<std::string> chat_template() const = 0;
};

// Streaming detokenizer: feed ids one by one, get only complete UTF-8 back. The
// concatenation of all returned pieces plus finish() equals decode(all ids).
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);
  // Appends one generated id; returns newly completed text (possibly empty).
  std::string push(int32_t id);
  // End of stream: whatever is pending (an incomplete character becomes U+FFFD).
  std::string finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids before this are fully emitted and context only
  size_t read_offset_ = 0;    // text of ids_[prefix_offset_, read_offset_) already emitted
};

}  // namespace tandem
