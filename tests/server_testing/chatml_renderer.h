// Test double of the chat renderer: ChatML, what ByteTokenizer::chat_template()
// says, rendered directly (the Jinja engine lives on branch `chat`).
#pragma once

#include "server/model_service.h"

namespace tandem::testing {

class ChatMlRenderer : public server::ChatRenderer {
 public:
  StatusOr<std::string> render(const nlohmann::json& messages, bool add_generation_prompt) const override;
};

}  // namespace tandem::testing
