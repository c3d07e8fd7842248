#include "server/template_chat_renderer.h"

namespace tandem::server {

StatusOr<std::unique_ptr<TemplateChatRenderer>> TemplateChatRenderer::load(const std::string& path,
                                                                           bool* used_default) {
  auto config = load_chat_template_config(path);
  if (!config.ok()) return config.status();
  *used_default = !config->chat_template.has_value();
  if (*used_default) {
    return std::unique_ptr<TemplateChatRenderer>(
        new TemplateChatRenderer(ChatTemplate::default_template(), std::move(config).value()));
  }
  auto compiled = ChatTemplate::compile(*config->chat_template);
  if (!compiled.ok()) return Status(compiled.status().code(), "chat template: " + compiled.status().message());
  return std::unique_ptr<TemplateChatRenderer>(
      new TemplateChatRenderer(std::move(compiled).value(), std::move(config).value()));
}

StatusOr<std::string> TemplateChatRenderer::render(const nlohmann::json& messages, bool add_generation_prompt) const {
  ChatRenderOptions o;
  o.add_generation_prompt = add_generation_prompt;
  o.bos_token = config_.bos_token;
  o.eos_token = config_.eos_token;
  // Key order matters to templates that use tojson: keep role, content first.
  nlohmann::ordered_json ordered = nlohmann::ordered_json::array();
  for (const auto& m : messages) {
    nlohmann::ordered_json om = nlohmann::ordered_json::object();
    om["role"] = m.at("role");
    om["content"] = m.at("content");
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it.key() != "role" && it.key() != "content") om[it.key()] = nlohmann::ordered_json::parse(it->dump());
    }
    ordered.push_back(std::move(om));
  }
  return template_.render(ordered, o);
}

}  // namespace tandem::server
