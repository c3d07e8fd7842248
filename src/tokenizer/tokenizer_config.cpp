#include "tokenizer/tokenizer_config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace tandem {
namespace {

using json = nlohmann::json;

std::optional<std::string> token_field(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

StatusOr<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("cannot open " + path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return internal_error("error reading " + path.string());
  return ss.str();
}

StatusOr<TokenizerConfig> load_tokenizer_config(const std::filesystem::path& dir) {
  TokenizerConfig c;
  const auto path = dir / "tokenizer_config.json";
  if (std::filesystem::exists(path)) {
    ASSIGN_OR_RETURN(std::string text, read_file(path));
    json cfg = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (cfg.is_discarded() || !cfg.is_object())
      return invalid_argument(path.string() + ": not a JSON object");
    c.bos_token = token_field(cfg, "bos_token");
    c.eos_token = token_field(cfg, "eos_token");
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
      c.add_bos_token = cfg["add_bos_token"].get<bool>();
    if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
      c.add_eos_token = cfg["add_eos_token"].get<bool>();
    if (cfg.contains("tokenizer_class") && cfg["tokenizer_class"].is_string())
      c.tokenizer_class = cfg["tokenizer_class"].get<std::string>();
    if (cfg.contains("chat_template")) {
      const json& t = cfg["chat_template"];
      if (t.is_string()) {
        c.chat_templates.push_back({"default", t.get<std::string>()});
      } else if (t.is_array()) {
        for (const auto& e : t) {
          if (!e.is_object() || !e.contains("name") || !e.contains("template") ||
              !e["name"].is_string() || !e["template"].is_string())
            return invalid_argument(path.string() +
                                    ": chat_template list entries need string \"name\" and \"template\"");
          c.chat_templates.push_back({e["name"].get<std::string>(), e["template"].get<std::string>()});
        }
      } else if (!t.is_null()) {
        return invalid_argument(path.string() + ": chat_template must be a string or a list");
      }
    }
  }
  const auto jinja = dir / "chat_template.jinja";
  if (c.chat_templates.empty() && std::filesystem::exists(jinja)) {
    ASSIGN_OR_RETURN(std::string src, read_file(jinja));
    c.chat_templates.push_back({"default", std::move(src)});
  }
  return c;
}

}  // namespace tandem
