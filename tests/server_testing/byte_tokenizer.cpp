#include "server_testing/byte_tokenizer.h"

namespace tandem::testing {
namespace {
const char* const kSpecial[] = {"<s>", "</s>", "<|im_start|>", "<|im_end|>"};
}

std::vector<int32_t> ByteTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens) ids.push_back(kBos);
  size_t i = 0;
  while (i < text.size()) {
    bool matched = false;
    for (int s = 0; s < 4; ++s) {
      std::string_view sp = kSpecial[s];
      if (text.substr(i, sp.size()) == sp) {
        ids.push_back(256 + s);
        i += sp.size();
        matched = true;
        break;
      }
    }
    if (!matched) ids.push_back(static_cast<unsigned char>(text[i++]));
  }
  return ids;
}

std::string ByteTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  for (int32_t id : ids) {
    if (id >= 0 && id < 256) out += static_cast<char>(id);
    else if (is_special(id) && !skip_special_tokens) out += kSpecial[id - 256];
  }
  return out;
}

std::optional<int32_t> ByteTokenizer::token_to_id(std::string_view token) const {
  for (int s = 0; s < 4; ++s) {
    if (token == kSpecial[s]) return 256 + s;
  }
  if (token.size() == 1) return static_cast<unsigned char>(token[0]);
  return std::nullopt;
}

std::string ByteTokenizer::id_to_token(int32_t id) const {
  if (id >= 0 && id < 256) return std::string(1, static_cast<char>(id));
  if (is_special(id)) return kSpecial[id - 256];
  return "";
}

std::optional<std::string> ByteTokenizer::chat_template() const {
  return "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
}

}  // namespace tandem::testing
