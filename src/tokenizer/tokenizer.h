// A Hugging Face tokenizer loaded from tokenizer.json (+ tokenizer_config.json),
// or from a bare SentencePiece tokenizer.model. Thread-safe after load (const).
//
// Encoding follows the HF `tokenizers` pipeline: added tokens are matched first
// (special or not, whether or not add_special_tokens is set), then normalizer,
// pre-tokenizer, model (BPE), and with add_special_tokens the post-processor
// (BOS etc.). Decoding follows `tokenizers`' Tokenizer.decode (no transformers
// clean_up_tokenization_spaces).
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

// One chat template from tokenizer_config.json ("chat_template" is a string, or
// a list of {"name", "template"}), or from chat_template.jinja in the folder.
struct NamedChatTemplate {
  std::string name;    // "default" for a plain string
  std::string source;  // Jinja source, verbatim
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // PATH: a folder (tokenizer.json, else tokenizer.model) or a tokenizer.json file.
  // Errors name the file and the unsupported component ("normalizer type 'X'").
  static StatusOr<std::unique_ptr<Tokenizer>> load(const std::string& path);

  // Invalid UTF-8 is replaced by U+FFFD first, as HF does.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  // Ids outside the vocabulary are skipped (as `tokenizers` does).
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;
  virtual int32_t vocab_size() const = 0;  // including added tokens
  virtual bool is_special(int32_t id) const = 0;
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;  // "" when out of range
  // From tokenizer_config.json where present.
  virtual std::optional<std::string> bos_token() const = 0;
  virtual std::optional<std::string> eos_token() const = 0;
  // The template named "default" (or the only one), if any.
  virtual std::optional<std::string> chat_template() const = 0;
  // Every template, in file order (the raw value of "chat_template"). Not pure,
  // so implementations written before it (test fakes) keep compiling.
  virtual std::vector<NamedChatTemplate> chat_templates() const {
    std::vector<NamedChatTemplate> out;
    if (auto t = chat_template()) out.push_back({"default", *t});
    return out;
  }
};

// Streaming detokenizer: feed ids one by one, get only complete UTF-8 back. The
// concatenation of all returned pieces plus finish() equals decode(all ids).
//
// It decodes a short window of recent ids twice per push (with and without the
// new id) and emits the difference, so SentencePiece leading spaces (which the
// decoder strips only at the start of a sequence), byte-fallback runs and
// characters spread over several byte-level tokens come out right. Text that
// ends in U+FFFD (an incomplete character) is held until the next push.
// Cost per push: two decodes of a few ids.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);
  // The first generated text continues `context` (the prompt's last few ids),
  // so a SentencePiece "▁word" first token keeps its space, as in vLLM's and
  // OpenAI's completions (" there" after "Once upon a time"). A context whose
  // text ends in an incomplete character is ignored.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens, std::span<const int32_t> context);
  // Appends one generated id; returns newly completed text (possibly empty).
  std::string push(int32_t id);
  // End of stream: whatever is pending (an incomplete character becomes U+FFFD).
  // Decodes all ids once.
  std::string finish();
  // All text returned so far by push() and finish().
  const std::string& text() const { return text_; }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids before this are fully emitted and context only
  size_t read_offset_ = 0;    // text of ids_[prefix_offset_, read_offset_) already emitted
  size_t num_context_ = 0;    // ids_[0, num_context_) are the context, never emitted
  std::string text_;          // concatenation of everything push() returned
};

// Stop strings (the engine owns stop checking; this is the text-level part).
// Given the full generated text so far and the stop strings, says where the
// earliest stop string starts, or else how many trailing bytes must be held
// back because they might be the start of a stop string. The engine sends
// text[sent, send_up_to) and, on a match, finishes with text[0, match_pos) as
// the whole output (OpenAI semantics: the stop string itself is not returned).
struct StopScan {
  std::optional<size_t> match_pos;  // byte offset of the earliest match
  size_t match_index = 0;           // which stop string matched (when match_pos)
  size_t send_up_to = 0;            // text[0, send_up_to) is safe to send now
};

// `search_from`: matches starting before this offset were ruled out by an
// earlier call (pass the previous send_up_to; 0 to scan everything). Empty stop
// strings are ignored. With no match, send_up_to = text.size() - hold back,
// where hold back is the longest suffix of text that is a proper prefix of a
// stop string.
StopScan scan_stop_strings(std::string_view text, std::span<const std::string> stops,
                           size_t search_from = 0);

}  // namespace tandem
