// `tandem chat-template`: renders a tokenizer folder's chat template over a
// JSON conversation and prints the prompt exactly (no added newline).
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "tokenizer/chat_template.h"

namespace tandem::cli {

int run_chat_template(int argc, char** argv) {
  CLI::App app{"Render a chat template (tokenizer_config.json) over messages, as transformers' apply_chat_template"};
  std::string tokenizer_path, messages_path;
  bool add_generation_prompt = false;
  app.add_option("--tokenizer", tokenizer_path, "folder with tokenizer_config.json, or that file / tokenizer.json")
      ->required();
  app.add_option("--messages", messages_path,
                 "JSON file: an array of messages, or {\"messages\": [...], \"tools\": [...], ...other variables}")
      ->required();
  app.add_flag("--add-generation-prompt", add_generation_prompt, "end with the assistant turn's opening");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  auto config = load_chat_template_config(tokenizer_path);
  if (!config.ok()) {
    std::fprintf(stderr, "tandem chat-template: %s\n", config.status().to_string().c_str());
    return 1;
  }
  std::ifstream in(messages_path);
  if (!in) {
    std::fprintf(stderr, "tandem chat-template: cannot open %s\n", messages_path.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = nlohmann::ordered_json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    std::fprintf(stderr, "tandem chat-template: %s is not valid JSON\n", messages_path.c_str());
    return 1;
  }

  ChatRenderOptions options;
  options.add_generation_prompt = add_generation_prompt;
  options.bos_token = config->bos_token;
  options.eos_token = config->eos_token;
  nlohmann::ordered_json messages;
  if (doc.is_array()) {
    messages = doc;
  } else if (doc.is_object() && doc.contains("messages")) {
    messages = doc["messages"];
    options.extra = nlohmann::ordered_json::object();
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      if (it.key() == "tools") options.tools = it.value();
      else if (it.key() == "add_generation_prompt" && it.value().is_boolean()) {
        options.add_generation_prompt = options.add_generation_prompt || it.value().get<bool>();
      } else if (it.key() != "messages") options.extra[it.key()] = it.value();
    }
  } else {
    std::fprintf(stderr, "tandem chat-template: %s must hold an array of messages or an object with \"messages\"\n",
                 messages_path.c_str());
    return 1;
  }

  if (!config->chat_template) {
    std::fprintf(stderr, "tandem chat-template: warning: %s has no chat_template; using the default (ChatML)\n",
                 tokenizer_path.c_str());
  }
  auto tmpl = config->chat_template ? ChatTemplate::compile(*config->chat_template) : ChatTemplate::default_template();
  if (!tmpl.ok()) {
    std::fprintf(stderr, "tandem chat-template: %s\n", tmpl.status().to_string().c_str());
    return 1;
  }
  auto prompt = tmpl->render(messages, options);
  if (!prompt.ok()) {
    std::fprintf(stderr, "tandem chat-template: %s\n", prompt.status().to_string().c_str());
    return 1;
  }
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  return 0;
}

}  // namespace tandem::cli
