// What the engine needs of a tokenizer: a streaming decoder per choice. Kept
// this small so the engine is tested without a real tokenizer; an adapter to
// tandem::Tokenizer / IncrementalDetokenizer is in tokenizer_text_decoder.h.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace tandem {

class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // Appends one generated id; returns newly completed UTF-8 text (maybe empty).
  virtual std::string push(int32_t id) = 0;
  // End of stream: whatever is pending.
  virtual std::string finish() = 0;
};

class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  virtual std::unique_ptr<StreamDecoder> start(bool skip_special_tokens) const = 0;
  // A decoder whose text continues the prompt (its last ids as `context`), so
  // the first token's leading space survives as in vLLM's output.
  virtual std::unique_ptr<StreamDecoder> start_after(bool skip_special_tokens,
                                                     std::span<const int32_t> context) const {
    return start(skip_special_tokens);
  }
};

}  // namespace tandem
