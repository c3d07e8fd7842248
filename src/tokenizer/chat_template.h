// Chat templates: a model's Jinja `chat_template` rendered as transformers'
// apply_chat_template renders it (jinja2 sandbox, trim_blocks, lstrip_blocks,
// loopcontrols, `{% generation %}`, tojson with ensure_ascii=False,
// raise_exception, strftime_now). See docs/chat_templates.md.
//
//   ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::compile(source));
//   ChatRenderOptions o;  o.add_generation_prompt = true;  o.bos_token = "<s>";
//   ASSIGN_OR_RETURN(std::string prompt, t.render(messages, o));
//
// Errors: compile() returns kUnimplemented naming a construct outside the
// supported subset and kInvalidArgument for a syntax error; render() returns
// kInvalidArgument, whose message starts with kRaisePrefix when the template
// itself called raise_exception (the server answers 400 with that message).
#pragma once

#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tandem {

namespace jinja {
struct Stmt;
}

struct ChatRenderOptions {
  bool add_generation_prompt = false;
  // Absent: the variable is undefined inside the template (transformers omits
  // special tokens the tokenizer does not have, e.g. Qwen2.5's bos_token).
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  // The `tools` variable: null renders as None, as transformers passes it.
  nlohmann::ordered_json tools = nullptr;
  // More template variables (enable_thinking, date_string, ...): an object,
  // or null. The fixed variables above win over a key of the same name.
  nlohmann::ordered_json extra = nullptr;
  // Pins strftime_now (local time, like Python's datetime.now()); unset: now.
  std::optional<std::time_t> now;
};

class ChatTemplate {
 public:
  // Prefix of the message when the template called raise_exception(msg).
  static constexpr const char* kRaisePrefix = "chat template raised an exception: ";
  // The template used when a model folder has none: ChatML, as transformers'
  // historical default (`<|im_start|>role\ncontent<|im_end|>\n`).
  static const char* default_source();

  static StatusOr<ChatTemplate> compile(std::string source);
  static ChatTemplate default_template();

  // messages: a JSON array of objects, handed to the template as they are
  // (content may be a string or a list of {"type": "text", "text": ...}
  // parts; nothing is normalized, as in transformers). Object key order is
  // kept (ordered_json), which tojson output depends on.
  StatusOr<std::string> render(const nlohmann::ordered_json& messages, const ChatRenderOptions& options) const;

  const std::string& source() const { return source_; }

 private:
  ChatTemplate() = default;
  std::string source_;
  std::shared_ptr<const std::vector<std::unique_ptr<jinja::Stmt>>> body_;
};

// What a tokenizer folder says about chat templating.
struct ChatTemplateConfig {
  std::optional<std::string> chat_template;  // absent: use the default and warn
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
};

// PATH: a folder holding tokenizer_config.json, or a tokenizer_config.json or
// tokenizer.json path (its folder's tokenizer_config.json is read). Tokens may
// be strings or AddedToken objects ({"content": ...}); chat_template may be a
// string or a list of {name, template} (the one named "default" is used).
StatusOr<ChatTemplateConfig> load_chat_template_config(const std::string& path);

}  // namespace tandem
