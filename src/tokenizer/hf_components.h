// The pieces of an HF tokenizer.json pipeline other than the model: normalizers,
// pre-tokenizers, decoders and the post-processor, each built from its JSON
// object. Unsupported types are load errors naming the type.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace tandem::hf {

// GPT-2's reversible byte <-> printable code point map used by ByteLevel.
struct ByteLevelMap {
  ByteLevelMap();
  uint32_t byte_to_cp[256];
  // Returns false when some character of `token` is not in the map.
  bool to_bytes(std::string_view token, std::string& out) const;
  std::string to_chars(std::string_view bytes) const;
};
const ByteLevelMap& byte_level_map();

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};
StatusOr<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j);

// A pre-tokenizer step transforms the list of pieces. `at_start`: the first piece
// begins at offset 0 of the input (Metaspace's prepend_scheme "first").
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void apply(std::vector<std::string>& pieces, bool at_start) const = 0;
};
// ByteLevel leaves pieces as raw bytes instead of mapping them to printable
// characters; the BPE model then works on bytes (same result, faster). Sets
// *byte_level when the chain contains a ByteLevel step (which must be last).
StatusOr<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const nlohmann::json& j,
                                                           bool* byte_level);

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};
StatusOr<std::unique_ptr<Decoder>> make_decoder(const nlohmann::json& j);

// Post-processing of a single sequence: ids before and after it.
struct PostProcessor {
  std::vector<int32_t> prefix;
  std::vector<int32_t> suffix;
};
StatusOr<PostProcessor> make_post_processor(const nlohmann::json& j);

}  // namespace tandem::hf
