#include "tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/check.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/parser.h"

namespace tandem {
namespace {

std::string strftime_at(std::time_t t, const std::string& format) {
  std::tm tm{};
  localtime_r(&t, &tm);
  std::string buf(256 + format.size() * 8, '\0');
  size_t n = std::strftime(buf.data(), buf.size(), format.c_str(), &tm);
  buf.resize(n);
  return buf;
}

}  // namespace

const char* ChatTemplate::default_source() {
  return "{% for message in messages %}"
         "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
         "{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
}

StatusOr<ChatTemplate> ChatTemplate::compile(std::string source) {
  ASSIGN_OR_RETURN(jinja::Body body, jinja::parse_template(source));
  ChatTemplate t;
  t.source_ = std::move(source);
  t.body_ = std::make_shared<const jinja::Body>(std::move(body));
  return t;
}

ChatTemplate ChatTemplate::default_template() {
  auto t = compile(default_source());
  CHECK_MSG(t.ok(), t.status().to_string());  // a constant that must parse
  return std::move(t).value();
}

StatusOr<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages,
                                           const ChatRenderOptions& options) const {
  if (!messages.is_array()) return invalid_argument("messages must be a JSON array");
  if (!options.extra.is_null() && !options.extra.is_object()) {
    return invalid_argument("extra template variables must be a JSON object");
  }
  std::vector<std::pair<std::string, jinja::Value>> vars;
  if (options.extra.is_object()) {
    for (auto it = options.extra.begin(); it != options.extra.end(); ++it) {
      vars.emplace_back(it.key(), jinja::Value::from_json(it.value()));
    }
  }
  vars.emplace_back("messages", jinja::Value::from_json(messages));
  vars.emplace_back("tools", jinja::Value::from_json(options.tools));
  vars.emplace_back("documents", jinja::Value::none());
  vars.emplace_back("add_generation_prompt", jinja::Value::boolean(options.add_generation_prompt));
  if (options.bos_token) vars.emplace_back("bos_token", jinja::Value::string(*options.bos_token));
  if (options.eos_token) vars.emplace_back("eos_token", jinja::Value::string(*options.eos_token));

  jinja::InterpreterOptions io;
  std::time_t now = options.now ? *options.now : std::time(nullptr);
  io.strftime_now = [now](const std::string& format) { return strftime_at(now, format); };
  jinja::Interpreter interpreter(std::move(io));
  try {
    return interpreter.render(*body_, vars);
  } catch (const jinja::RenderError& e) {
    if (e.kind() == jinja::RenderError::Kind::kRaise) return invalid_argument(std::string(kRaisePrefix) + e.what());
    return invalid_argument(std::string("chat template render error: ") + e.what());
  } catch (const std::exception& e) {  // e.g. bad_alloc: never let it escape a request
    return internal_error(std::string("chat template render failed: ") + e.what());
  }
}

StatusOr<ChatTemplateConfig> load_chat_template_config(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    p /= "tokenizer_config.json";
  } else if (p.filename() != "tokenizer_config.json") {
    p = p.parent_path() / "tokenizer_config.json";
  }
  std::ifstream in(p);
  if (!in) return not_found("cannot open " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::ordered_json cfg = nlohmann::ordered_json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (cfg.is_discarded() || !cfg.is_object()) return invalid_argument(p.string() + ": not a JSON object");

  ChatTemplateConfig out;
  auto token = [&](const char* key) -> StatusOr<std::optional<std::string>> {
    if (!cfg.contains(key) || cfg[key].is_null()) return std::optional<std::string>();
    const auto& t = cfg[key];
    if (t.is_string()) return std::optional<std::string>(t.get<std::string>());
    if (t.is_object() && t.contains("content") && t["content"].is_string()) {
      return std::optional<std::string>(t["content"].get<std::string>());
    }
    return invalid_argument(p.string() + ": field '" + key + "' is neither a string nor an AddedToken object");
  };
  ASSIGN_OR_RETURN(out.bos_token, token("bos_token"));
  ASSIGN_OR_RETURN(out.eos_token, token("eos_token"));
  if (cfg.contains("chat_template") && !cfg["chat_template"].is_null()) {
    const auto& ct = cfg["chat_template"];
    if (ct.is_string()) {
      out.chat_template = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const auto& entry : ct) {
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
            entry["template"].is_string()) {
          out.chat_template = entry["template"].get<std::string>();
        }
      }
      if (!out.chat_template) return invalid_argument(p.string() + ": chat_template list has no entry named 'default'");
    } else {
      return invalid_argument(p.string() + ": field 'chat_template' is neither a string nor a list");
    }
  }
  return out;
}

}  // namespace tandem
