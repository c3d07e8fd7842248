#include "server/server_config.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace tandem::server {
namespace {

constexpr int kMaxStepTokens = 1 << 24;  // max_num_batched_tokens and shared_step_tokens

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool valid_model_name(const std::string& name) {
  if (name.empty() || name.size() > 256) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':')) {
      return false;
    }
  }
  return true;
}

// Reads an integer field in [lo, hi].
Status read_int(const toml::table& t, const std::string& where, const char* key, int64_t lo, int64_t hi,
                std::optional<int>* out) {
  const toml::node* n = t.get(key);
  if (!n) return ok_status();
  auto v = n->value<int64_t>();
  if (!n->is_integer() || !v) return invalid_argument(where + "." + key + ": must be an integer");
  if (*v < lo || *v > hi) {
    return invalid_argument(where + "." + key + ": must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                            "], got " + std::to_string(*v));
  }
  *out = static_cast<int>(*v);
  return ok_status();
}

Status read_engine_table(const toml::table& t, const std::string& where, bool allow_path, EngineOverrides* o,
                         std::string* path) {
  static const std::set<std::string> kKeys = {"device", "gpu_budget", "max_model_len", "max_num_seqs",
                                              "max_num_batched_tokens", "max_queue", "load_format", "weight",
                                              "shared_step_tokens"};
  for (const auto& [k, v] : t) {
    std::string key(k.str());
    if (kKeys.count(key) || (allow_path && key == "path")) continue;
    return invalid_argument(where + ": unknown key '" + key + "'");
  }
  if (const toml::node* n = t.get("device")) {
    auto s = n->value<std::string>();
    if (!s || (*s != "auto" && *s != "cpu" && *s != "cuda")) {
      return invalid_argument(where + ".device: must be \"auto\", \"cpu\" or \"cuda\"");
    }
    o->device = *s;
  }
  if (const toml::node* n = t.get("gpu_budget")) {
    if (auto s = n->value<std::string>(); s && n->is_string()) {
      auto bytes = parse_size(*s);
      if (!bytes.ok()) return invalid_argument(where + ".gpu_budget: " + bytes.status().message());
      o->gpu_budget_bytes = *bytes;
    } else if (auto i = n->value<int64_t>(); i && n->is_integer() && *i >= 0) {
      o->gpu_budget_bytes = static_cast<uint64_t>(*i);
    } else {
      return invalid_argument(where + ".gpu_budget: must be a size like \"96GiB\" or a byte count");
    }
  }
  if (const toml::node* n = t.get("load_format")) {
    auto s = n->value<std::string>();
    if (!s || !n->is_string() || (*s != "auto" && *s != "dummy"))
      return invalid_argument(where + ".load_format: must be \"auto\" or \"dummy\"");
    o->load_format = *s;
  }
  RETURN_IF_ERROR(read_int(t, where, "max_model_len", 1, 1 << 24, &o->max_model_len));
  RETURN_IF_ERROR(read_int(t, where, "max_num_seqs", 1, 1 << 20, &o->max_num_seqs));
  RETURN_IF_ERROR(read_int(t, where, "max_num_batched_tokens", 1, kMaxStepTokens, &o->max_num_batched_tokens));
  RETURN_IF_ERROR(read_int(t, where, "max_queue", 1, 1 << 24, &o->max_queue));
  RETURN_IF_ERROR(read_int(t, where, "shared_step_tokens", 0, kMaxStepTokens, &o->shared_step_tokens));
  if (const toml::node* n = t.get("weight")) {
    auto w = n->value<double>();
    if (!w || !(n->is_floating_point() || n->is_integer()) || !(*w > 0 && *w <= 1e6))
      return invalid_argument(where + ".weight: must be a number in (0, 1e6]");
    o->weight = *w;
  }
  if (allow_path) {
    const toml::node* n = t.get("path");
    if (!n || !n->is_string()) return invalid_argument(where + ".path: required (the model folder)");
    *path = *n->value<std::string>();
  }
  return ok_status();
}

Status read_double(const toml::table& t, const char* key, double lo, double hi, double* out) {
  const toml::node* n = t.get(key);
  if (!n) return ok_status();
  auto v = n->value<double>();
  if (!v || !(n->is_floating_point() || n->is_integer())) return invalid_argument(std::string("server.") + key + ": must be a number");
  if (!(*v >= lo && *v <= hi)) {
    std::ostringstream os;
    os << "server." << key << ": must be in [" << lo << ", " << hi << "], got " << *v;
    return invalid_argument(os.str());
  }
  *out = *v;
  return ok_status();
}

Status read_server_table(const toml::table& t, ServerConfig* c) {
  static const std::set<std::string> kKeys = {"host", "port", "api_key", "api_key_file", "auth_health_metrics",
                                              "io_threads", "max_body_bytes", "request_timeout_s",
                                              "idle_timeout_s", "drain_timeout_s", "log_format"};
  for (const auto& [k, v] : t) {
    if (!kKeys.count(std::string(k.str()))) return invalid_argument("server: unknown key '" + std::string(k.str()) + "'");
  }
  auto str = [&](const char* key, std::string* out) -> Status {
    if (const toml::node* n = t.get(key)) {
      if (!n->is_string()) return invalid_argument(std::string("server.") + key + ": must be a string");
      *out = *n->value<std::string>();
    }
    return ok_status();
  };
  RETURN_IF_ERROR(str("host", &c->host));
  RETURN_IF_ERROR(str("api_key", &c->api_key));
  RETURN_IF_ERROR(str("api_key_file", &c->api_key_file));
  RETURN_IF_ERROR(str("log_format", &c->log_format));
  std::optional<int> port, threads;
  RETURN_IF_ERROR(read_int(t, "server", "port", 0, 65535, &port));
  RETURN_IF_ERROR(read_int(t, "server", "io_threads", 1, 256, &threads));
  if (port) c->port = *port;
  if (threads) c->io_threads = *threads;
  if (const toml::node* n = t.get("auth_health_metrics")) {
    if (!n->is_boolean()) return invalid_argument("server.auth_health_metrics: must be true or false");
    c->auth_health_metrics = *n->value<bool>();
  }
  if (const toml::node* n = t.get("max_body_bytes")) {
    if (n->is_string()) {
      auto b = parse_size(*n->value<std::string>());
      if (!b.ok()) return invalid_argument("server.max_body_bytes: " + b.status().message());
      c->max_body_bytes = *b;
    } else if (n->is_integer() && *n->value<int64_t>() > 0) {
      c->max_body_bytes = static_cast<uint64_t>(*n->value<int64_t>());
    } else {
      return invalid_argument("server.max_body_bytes: must be a positive size");
    }
  }
  RETURN_IF_ERROR(read_double(t, "request_timeout_s", 0.001, 86400 * 7, &c->request_timeout_s));
  RETURN_IF_ERROR(read_double(t, "idle_timeout_s", 0.001, 86400, &c->idle_timeout_s));
  RETURN_IF_ERROR(read_double(t, "drain_timeout_s", 0, 86400, &c->drain_timeout_s));
  return ok_status();
}

}  // namespace

void EngineOverrides::apply_to(EngineOptions* o) const {
  if (device) o->device = *device;
  if (gpu_budget_bytes) o->gpu_budget_bytes = *gpu_budget_bytes;
  if (max_model_len) o->max_model_len = *max_model_len;
  if (max_num_seqs) o->max_num_seqs = *max_num_seqs;
  if (max_num_batched_tokens) o->max_num_batched_tokens = *max_num_batched_tokens;
  if (max_queue) o->max_queue = *max_queue;
  if (load_format) o->load_format = *load_format;
  if (weight) o->weight = *weight;
  if (shared_step_tokens) o->shared_step_tokens = *shared_step_tokens;
}

StatusOr<int> resolve_concurrent_steps(int configured, const std::string& device) {
  if (configured < 0 || configured > 2)
    return invalid_argument("--concurrent-steps must be 1 or 2, got " + std::to_string(configured));
  if (configured > 0) return configured;
  return device == "cuda" ? 2 : 1;
}

StatusOr<uint64_t> parse_size(const std::string& text) {
  std::string s = trim(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return invalid_argument("'" + text + "' is not a size (e.g. 96GiB, 512MiB, 1073741824)");
  double number = 0;
  try {
    number = std::stod(s.substr(0, i));
  } catch (...) {
    return invalid_argument("'" + text + "' is not a size");
  }
  std::string unit = trim(s.substr(i));
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1}, {"B", 1}, {"K", 1e3}, {"KB", 1e3}, {"KiB", 1024.0}, {"M", 1e6}, {"MB", 1e6},
      {"MiB", 1048576.0}, {"G", 1e9}, {"GB", 1e9}, {"GiB", 1073741824.0}, {"T", 1e12}, {"TB", 1e12},
      {"TiB", 1099511627776.0}};
  for (const auto& [name, scale] : kUnits) {
    if (unit == name) {
      double bytes = number * scale;
      if (!std::isfinite(bytes) || bytes > 1.8e19) return invalid_argument("'" + text + "' is too large");
      return static_cast<uint64_t>(bytes);
    }
  }
  return invalid_argument("'" + text + "': unknown unit '" + unit + "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)");
}

Status parse_config_toml(const std::string& text, const std::string& source_name, ServerConfig* config) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return invalid_argument(os.str());
  }
  for (const auto& [k, v] : root) {
    std::string key(k.str());
    if (key != "server" && key != "engine" && key != "models") {
      return invalid_argument(source_name + ": unknown table '" + key + "' (expected server, engine, models)");
    }
    if (!v.is_table()) return invalid_argument(source_name + ": '" + key + "' must be a table");
  }
  if (const toml::table* t = root["server"].as_table()) {
    Status s = read_server_table(*t, config);
    if (!s.ok()) return invalid_argument(source_name + ": " + s.message());
  }
  if (const toml::table* t = root["engine"].as_table()) {
    Status s = read_engine_table(*t, "engine", false, &config->engine_file, nullptr);
    if (!s.ok()) return invalid_argument(source_name + ": " + s.message());
  }
  if (const toml::table* models = root["models"].as_table()) {
    for (const auto& [k, v] : *models) {
      std::string name(k.str());
      std::string where = "models." + name;
      if (!v.is_table()) return invalid_argument(source_name + ": " + where + " must be a table");
      if (!valid_model_name(name)) return invalid_argument(source_name + ": " + where + ": invalid model name");
      ModelEntry entry;
      entry.name = name;
      Status s = read_engine_table(*v.as_table(), where, true, &entry.overrides, &entry.path);
      if (!s.ok()) return invalid_argument(source_name + ": " + s.message());
      config->models.push_back(std::move(entry));
    }
  }
  return ok_status();
}

Status load_config_file(const std::string& path, ServerConfig* config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("config file " + path + ": cannot be read");
  std::ostringstream os;
  os << in.rdbuf();
  return parse_config_toml(os.str(), path, config);
}

Status add_model_flag(const std::string& spec, ServerConfig* config) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return invalid_argument("--model '" + spec + "': expected NAME=DIR");
  }
  std::string name = spec.substr(0, eq), path = spec.substr(eq + 1);
  if (!valid_model_name(name)) return invalid_argument("--model '" + spec + "': invalid model name '" + name + "'");
  for (auto& m : config->models) {
    if (m.name == name) {
      m.path = path;  // the flag overrides the file's folder, keeps its per-model settings
      return ok_status();
    }
  }
  ModelEntry entry;
  entry.name = name;
  entry.path = path;
  config->models.push_back(std::move(entry));
  return ok_status();
}

Status finalize_config(ServerConfig* c, const char* env_api_key) {
  if (c->models.empty()) return invalid_argument("no models: give --model NAME=DIR or [models.NAME] in --config");
  std::set<std::string> names;
  for (const auto& m : c->models) {
    if (!names.insert(m.name).second) return invalid_argument("model '" + m.name + "' is given twice");
  }
  if (c->log_format != "text" && c->log_format != "json") {
    return invalid_argument("log format '" + c->log_format + "': must be text or json");
  }
  if (c->port < 0 || c->port > 65535) return invalid_argument("port " + std::to_string(c->port) + ": must be in [0, 65535]");
  if (c->io_threads < 1 || c->io_threads > 256) return invalid_argument("io threads: must be in [1, 256]");
  if (c->api_key.empty() && !c->api_key_file.empty()) {
    std::ifstream in(c->api_key_file, std::ios::binary);
    if (!in) return not_found("api key file " + c->api_key_file + ": cannot be read");
    std::ostringstream os;
    os << in.rdbuf();
    c->api_key = trim(os.str());
    if (c->api_key.empty()) return invalid_argument("api key file " + c->api_key_file + ": is empty");
  }
  if (c->api_key.empty() && env_api_key && *env_api_key) c->api_key = env_api_key;
  if (const std::optional<int>& t = c->engine_cli.shared_step_tokens; t && (*t < 0 || *t > kMaxStepTokens))
    return invalid_argument("--shared-step-tokens: must be in [0, " + std::to_string(kMaxStepTokens) +
                            "] (0: no cap), got " + std::to_string(*t));
  for (auto& m : c->models) {
    m.engine = EngineOptions{};
    c->engine_file.apply_to(&m.engine);
    m.overrides.apply_to(&m.engine);
    c->engine_cli.apply_to(&m.engine);
  }
  // One budget for the whole process (docs/memory.md): set once, for every model alike.
  for (const auto& m : c->models) {
    const EngineOptions& first = c->models.front().engine;
    if (m.engine.gpu_budget_bytes != first.gpu_budget_bytes)
      return invalid_argument("gpu_budget is one budget for all models: set it in [engine] or with --gpu-budget, "
                              "not per model ('" + m.name + "' differs from '" + c->models.front().name + "')");
    if (first.gpu_budget_bytes > 0 && m.engine.device != first.device)
      return invalid_argument("with gpu_budget every model runs on the same device ('" + m.name + "' has device " +
                              m.engine.device + ", '" + c->models.front().name + "' " + first.device + ")");
  }
  return ok_status();
}

}  // namespace tandem::server
