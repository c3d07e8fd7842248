// ChatRenderer over the model's Jinja chat template (tokenizer/chat_template.h).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "server/model_service.h"
#include "tokenizer/chat_template.h"

namespace tandem::server {

class TemplateChatRenderer : public ChatRenderer {
 public:
  // The model folder's template (tokenizer_config.json / chat_template.jinja);
  // a folder without one gets transformers' default (ChatML) and `*used_default` is set.
  static StatusOr<std::unique_ptr<TemplateChatRenderer>> load(const std::string& path, bool* used_default);
  StatusOr<std::string> render(const nlohmann::json& messages, bool add_generation_prompt) const override;

 private:
  TemplateChatRenderer(ChatTemplate t, ChatTemplateConfig c) : template_(std::move(t)), config_(std::move(c)) {}
  ChatTemplate template_;
  ChatTemplateConfig config_;
};

}  // namespace tandem::server
