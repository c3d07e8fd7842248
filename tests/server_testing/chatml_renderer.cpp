#include "server_testing/chatml_renderer.h"

namespace tandem::testing {

StatusOr<std::string> ChatMlRenderer::render(const nlohmann::json& messages, bool add_generation_prompt) const {
  std::string out;
  for (const auto& m : messages) {
    out += "<|im_start|>" + m.at("role").get<std::string>() + "\n" + m.at("content").get<std::string>() +
           "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace tandem::testing
