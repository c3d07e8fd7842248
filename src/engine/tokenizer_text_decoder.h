// TextDecoder over a tandem::Tokenizer: each choice streams through its own
// IncrementalDetokenizer.
#pragma once

#include <memory>

#include "engine/text_decoder.h"
#include "tokenizer/tokenizer.h"

namespace tandem {

class TokenizerTextDecoder : public TextDecoder {
 public:
  // The tokenizer must outlive this object and every decoder it starts.
  explicit TokenizerTextDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  std::unique_ptr<StreamDecoder> start(bool skip_special_tokens) const override;
  std::unique_ptr<StreamDecoder> start_after(bool skip_special_tokens,
                                             std::span<const int32_t> context) const override;

 private:
  const Tokenizer& tokenizer_;
};

}  // namespace tandem
