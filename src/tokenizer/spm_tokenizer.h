// Tokenizer from a bare SentencePiece tokenizer.model (older Llama-2 / Mistral
// folders), through libsentencepiece. Semantics (mirrored by the fixture
// generator, scripts/gpu/make_tokenizer_fixtures.py):
//  - encode: the text is split at the control/unknown pieces' strings ("<s>",
//    "</s>", "<unk>"), which become their ids; every other non-empty part is
//    encoded by SentencePiece (each part gets the model's dummy prefix, like
//    transformers' legacy Llama tokenizer). add_special_tokens prepends BOS.
//  - decode: runs of ordinary ids are decoded by SentencePiece; control and
//    unknown ids are written as their piece text, or dropped with skip.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace tandem {

// Null with a clear error when libsentencepiece was not found at build time.
StatusOr<std::unique_ptr<Tokenizer>> load_sentencepiece_tokenizer(const std::string& model_path,
                                                                  TokenizerConfig config);

}  // namespace tandem
