#include "server/request_parse.h"

#include <cmath>
#include <limits>
#include <set>

namespace tandem::server {
namespace {

using nlohmann::json;

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

ApiError wrong_type(const std::string& field, const std::string& want, const json& got) {
  return bad_request("'" + field + "' must be " + want + ", got " + type_name(got), field);
}

// Reads obj[key] when present and not null. The getters return an error or nothing.
const json* find(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<ApiError> get_int(const json& obj, const char* key, int64_t lo, int64_t hi, int64_t* out,
                                bool* given = nullptr) {
  const json* v = find(obj, key);
  if (given) *given = v != nullptr;
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) return wrong_type(key, "an integer", *v);
  int64_t x;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    x = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                         : static_cast<int64_t>(u);
  } else {
    x = v->get<int64_t>();
  }
  if (x < lo || x > hi) {
    return bad_request("'" + std::string(key) + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                           "], got " + std::to_string(x),
                       key);
  }
  *out = x;
  return std::nullopt;
}

std::optional<ApiError> get_int32(const json& obj, const char* key, int64_t lo, int64_t hi, int* out,
                                  bool* given = nullptr) {
  int64_t x = 0;
  auto err = get_int(obj, key, lo, hi, &x, given);
  if (err) return err;
  if (obj.contains(key) && !obj[key].is_null()) *out = static_cast<int>(x);
  return std::nullopt;
}

// A float in [lo, hi] (lo_open: lo excluded).
std::optional<ApiError> get_float(const json& obj, const char* key, double lo, double hi, bool lo_open,
                                  float* out) {
  const json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) return wrong_type(key, "a number", *v);
  double x = v->get<double>();
  bool below = lo_open ? !(x > lo) : !(x >= lo);
  if (!std::isfinite(x) || below || x > hi) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "'%s' must be in %s%g, %g], got %g", key, lo_open ? "(" : "[", lo, hi, x);
    return bad_request(buf, key);
  }
  *out = static_cast<float>(x);
  return std::nullopt;
}

std::optional<ApiError> get_bool(const json& obj, const char* key, bool* out) {
  const json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) return wrong_type(key, "a boolean", *v);
  *out = v->get<bool>();
  return std::nullopt;
}

std::optional<ApiError> get_string(const json& obj, const char* key, std::string* out) {
  const json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) return wrong_type(key, "a string", *v);
  *out = v->get<std::string>();
  return std::nullopt;
}

#define TRY(expr)                      \
  do {                                 \
    if (auto e_ = (expr)) return *e_;  \
  } while (0)

std::optional<ApiError> check_known_keys(const json& obj, const std::set<std::string>& known,
                                         const std::set<std::string>& unsupported) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& k = it.key();
    if (known.count(k)) continue;
    if (unsupported.count(k) && it->is_null()) continue;
    if (unsupported.count(k)) return unsupported_param(k);
    return bad_request("unknown parameter '" + k + "'", k);
  }
  return std::nullopt;
}

// Token ids: a non-empty array of integers in [0, 2^31).
std::optional<ApiError> get_token_list(const json& v, const std::string& field, std::vector<int32_t>* out,
                                       bool allow_empty = false) {
  if (!v.is_array()) return wrong_type(field, "an array of token ids", v);
  if (v.empty() && !allow_empty) return bad_request("'" + field + "' must not be empty", field);
  out->clear();
  out->reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const json& t = v[i];
    std::string f = field + "[" + std::to_string(i) + "]";
    if (!t.is_number_integer()) return wrong_type(f, "a token id (integer)", t);
    if (t.is_number_unsigned() ? t.get<uint64_t>() > 0x7fffffffULL
                               : (t.get<int64_t>() < 0 || t.get<int64_t>() > 0x7fffffffLL)) {
      return bad_request("'" + f + "' must be a token id >= 0", f);
    }
    out->push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return std::nullopt;
}

// Parameters shared by both generation endpoints.
const std::set<std::string> kCommonKeys = {
    "model", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty",
    "logprobs", "stream", "stream_options", "user", "top_k", "min_p", "repetition_penalty", "min_tokens",
    "ignore_eos", "stop_token_ids", "skip_special_tokens", "add_special_tokens", "best_of", "logit_bias",
    "response_format"};
// Known OpenAI/vLLM parameters this server does not implement: refused by name
// unless null (what a client sends for "unset").
const std::set<std::string> kUnsupportedKeys = {
    "suffix", "tools", "tool_choice", "functions", "function_call", "parallel_tool_calls", "guided_json",
    "guided_regex", "guided_choice", "guided_grammar", "structured_outputs", "prompt_logprobs",
    "use_beam_search", "length_penalty", "include_stop_str_in_output", "truncate_prompt_tokens",
    "allowed_token_ids", "bad_words", "logits_processors", "audio", "modalities", "prediction", "store",
    "metadata", "reasoning_effort", "service_tier", "web_search_options", "continue_final_message",
    "chat_template", "chat_template_kwargs", "documents", "mm_processor_kwargs", "priority",
    "spaces_between_special_tokens", "echo"};

std::optional<ApiError> parse_common(const json& obj, const RequestLimits& limits, GenerationSpec* spec) {
  const json* model = find(obj, "model");
  if (!model) return bad_request("'model' is required", "model");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  spec->model = model->get<std::string>();
  if (spec->model.empty()) return bad_request("'model' must not be empty", "model");

  SamplingParams& s = spec->sampling;
  bool given = false;
  const char* max_tokens_key = obj.contains("max_completion_tokens") && !obj["max_completion_tokens"].is_null()
                                   ? "max_completion_tokens"
                                   : "max_tokens";
  TRY(get_int32(obj, max_tokens_key, 1, std::numeric_limits<int32_t>::max(), &s.max_tokens, &given));
  spec->max_tokens_given = given;
  TRY(get_float(obj, "temperature", 0.0, 2.0, false, &s.temperature));
  TRY(get_float(obj, "top_p", 0.0, 1.0, true, &s.top_p));
  TRY(get_int32(obj, "n", 1, limits.max_n, &s.n));
  TRY(get_float(obj, "presence_penalty", -2.0, 2.0, false, &s.presence_penalty));
  TRY(get_float(obj, "frequency_penalty", -2.0, 2.0, false, &s.frequency_penalty));
  TRY(get_float(obj, "repetition_penalty", 0.0, 10.0, true, &s.repetition_penalty));
  TRY(get_float(obj, "min_p", 0.0, 1.0, false, &s.min_p));
  TRY(get_int32(obj, "top_k", -1, 1 << 20, &s.top_k));
  TRY(get_int32(obj, "min_tokens", 0, std::numeric_limits<int32_t>::max(), &s.min_tokens));
  TRY(get_bool(obj, "ignore_eos", &s.ignore_eos));
  TRY(get_bool(obj, "skip_special_tokens", &s.skip_special_tokens));
  TRY(get_bool(obj, "add_special_tokens", &spec->add_special_tokens));
  TRY(get_bool(obj, "stream", &spec->stream));
  TRY(get_string(obj, "user", &spec->user));
  if (s.min_tokens > s.max_tokens && spec->max_tokens_given) {
    return bad_request("'min_tokens' (" + std::to_string(s.min_tokens) + ") must be <= '" + max_tokens_key +
                           "' (" + std::to_string(s.max_tokens) + ")",
                       "min_tokens");
  }

  if (const json* seed = find(obj, "seed")) {
    if (!seed->is_number_integer()) return wrong_type("seed", "an integer", *seed);
    s.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
  }

  if (const json* stop = find(obj, "stop")) {
    if (stop->is_string()) {
      s.stop = {stop->get<std::string>()};
    } else if (stop->is_array()) {
      if (static_cast<int>(stop->size()) > limits.max_stop) {
        return bad_request("'stop' has " + std::to_string(stop->size()) + " strings; the limit is " +
                               std::to_string(limits.max_stop),
                           "stop");
      }
      for (size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string()) return wrong_type("stop[" + std::to_string(i) + "]", "a string", (*stop)[i]);
        s.stop.push_back((*stop)[i].get<std::string>());
      }
    } else {
      return wrong_type("stop", "a string or an array of strings", *stop);
    }
    for (const auto& str : s.stop) {
      if (str.empty()) return bad_request("'stop' strings must not be empty", "stop");
    }
  }
  if (const json* ids = find(obj, "stop_token_ids")) {
    TRY(get_token_list(*ids, "stop_token_ids", &s.stop_token_ids, /*allow_empty=*/true));
    if (static_cast<int>(s.stop_token_ids.size()) > limits.max_stop_token_ids) {
      return bad_request("'stop_token_ids' has " + std::to_string(s.stop_token_ids.size()) + " ids; the limit is " +
                             std::to_string(limits.max_stop_token_ids),
                         "stop_token_ids");
    }
  }

  if (const json* so = find(obj, "stream_options")) {
    if (!so->is_object()) return wrong_type("stream_options", "an object", *so);
    if (!spec->stream) return bad_request("'stream_options' is only allowed when 'stream' is true", "stream_options");
    for (auto it = so->begin(); it != so->end(); ++it) {
      if (it.key() == "include_usage") {
        if (!it->is_boolean() && !it->is_null()) {
          return wrong_type("stream_options.include_usage", "a boolean", *it);
        }
        spec->include_usage = it->is_boolean() && it->get<bool>();
      } else if (it.key() == "continuous_usage_stats") {
        if (it->is_boolean() && it->get<bool>()) return unsupported_param("stream_options.continuous_usage_stats");
      } else {
        return bad_request("unknown parameter 'stream_options." + it.key() + "'", "stream_options." + it.key());
      }
    }
  }

  // Accepted only with values that change nothing; anything else is refused by name.
  if (const json* best_of = find(obj, "best_of")) {
    if (!best_of->is_number_integer() || best_of->get<int64_t>() != s.n) {
      return unsupported_param("best_of", "only best_of == n is supported");
    }
  }
  if (const json* bias = find(obj, "logit_bias")) {
    if (!bias->is_object() || !bias->empty()) return unsupported_param("logit_bias");
  }
  if (const json* rf = find(obj, "response_format")) {
    if (!rf->is_object()) return wrong_type("response_format", "an object", *rf);
    const json* t = find(*rf, "type");
    if (!t || !t->is_string() || t->get<std::string>() != "text") {
      std::string what = t && t->is_string() ? t->get<std::string>() : "?";
      return unsupported_param("response_format", "type '" + what + "'; only {\"type\": \"text\"}");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> parse_prompt(const json& p, const RequestLimits& limits, std::vector<PromptInput>* out) {
  auto too_many = [&](size_t n) -> std::optional<ApiError> {
    if (static_cast<int>(n) > limits.max_prompts) {
      return bad_request("'prompt' has " + std::to_string(n) + " prompts; the limit is " +
                             std::to_string(limits.max_prompts),
                         "prompt");
    }
    return std::nullopt;
  };
  if (p.is_string()) {
    out->push_back({false, p.get<std::string>(), {}});
    return std::nullopt;
  }
  if (!p.is_array()) return wrong_type("prompt", "a string, an array of strings, or token ids", p);
  if (p.empty()) return bad_request("'prompt' must not be empty", "prompt");
  if (p[0].is_string()) {
    TRY(too_many(p.size()));
    for (size_t i = 0; i < p.size(); ++i) {
      if (!p[i].is_string()) return wrong_type("prompt[" + std::to_string(i) + "]", "a string", p[i]);
      out->push_back({false, p[i].get<std::string>(), {}});
    }
    return std::nullopt;
  }
  if (p[0].is_number()) {
    PromptInput in;
    in.is_tokens = true;
    TRY(get_token_list(p, "prompt", &in.token_ids));
    out->push_back(std::move(in));
    return std::nullopt;
  }
  if (p[0].is_array()) {
    TRY(too_many(p.size()));
    for (size_t i = 0; i < p.size(); ++i) {
      PromptInput in;
      in.is_tokens = true;
      TRY(get_token_list(p[i], "prompt[" + std::to_string(i) + "]", &in.token_ids));
      out->push_back(std::move(in));
    }
    return std::nullopt;
  }
  return wrong_type("prompt[0]", "a string, a token id or an array of token ids", p[0]);
}

// Normalizes chat messages: content becomes one string (text parts joined).
std::optional<ApiError> parse_messages(const json& obj, json* out) {
  const json* msgs = find(obj, "messages");
  if (!msgs) return bad_request("'messages' is required", "messages");
  if (!msgs->is_array()) return wrong_type("messages", "an array", *msgs);
  if (msgs->empty()) return bad_request("'messages' must not be empty", "messages");
  static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant", "tool"};
  static const std::set<std::string> kMessageKeys = {"role", "content", "name", "tool_calls", "tool_call_id"};
  *out = json::array();
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    std::string f = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return wrong_type(f, "an object", m);
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!kMessageKeys.count(it.key())) return bad_request("unknown field '" + f + "." + it.key() + "'", f + "." + it.key());
    }
    const json* role = find(m, "role");
    if (!role) return bad_request("'" + f + ".role' is required", f + ".role");
    if (!role->is_string() || !kRoles.count(role->get<std::string>())) {
      return bad_request("'" + f + ".role' must be one of system, developer, user, assistant, tool", f + ".role");
    }
    json norm = {{"role", role->get<std::string>()}};
    const json* content = find(m, "content");
    const json* tool_calls = find(m, "tool_calls");
    if (!content) {
      if (!(norm["role"] == "assistant" && tool_calls)) {
        return bad_request("'" + f + ".content' is required", f + ".content");
      }
      norm["content"] = "";
    } else if (content->is_string()) {
      norm["content"] = content->get<std::string>();
    } else if (content->is_array()) {
      std::string text;
      for (size_t j = 0; j < content->size(); ++j) {
        const json& part = (*content)[j];
        std::string pf = f + ".content[" + std::to_string(j) + "]";
        if (!part.is_object()) return wrong_type(pf, "an object", part);
        const json* type = find(part, "type");
        if (!type || !type->is_string()) return bad_request("'" + pf + ".type' is required", pf + ".type");
        if (type->get<std::string>() != "text") {
          return unsupported_param(pf + ".type", "content part type '" + type->get<std::string>() + "'; only 'text'");
        }
        const json* t = find(part, "text");
        if (!t || !t->is_string()) return bad_request("'" + pf + ".text' must be a string", pf + ".text");
        text += t->get<std::string>();
      }
      norm["content"] = text;
    } else {
      return wrong_type(f + ".content", "a string or an array of text parts", *content);
    }
    if (const json* name = find(m, "name")) {
      if (!name->is_string()) return wrong_type(f + ".name", "a string", *name);
      norm["name"] = *name;
    }
    if (tool_calls) {
      if (norm["role"] != "assistant") return bad_request("'" + f + ".tool_calls' is only allowed on assistant messages", f + ".tool_calls");
      if (!tool_calls->is_array()) return wrong_type(f + ".tool_calls", "an array", *tool_calls);
      norm["tool_calls"] = *tool_calls;
    }
    if (const json* id = find(m, "tool_call_id")) {
      if (!id->is_string()) return wrong_type(f + ".tool_call_id", "a string", *id);
      norm["tool_call_id"] = *id;
    }
    out->push_back(std::move(norm));
  }
  return std::nullopt;
}

// Deepest nesting of arrays/objects, by a scan that skips strings.
int json_depth(std::string_view s, int stop_at) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
      if (max_depth > stop_at) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace

ApiResult<json> parse_json_object(std::string_view body, int max_depth) {
  if (json_depth(body, max_depth) > max_depth) {
    return bad_request("request body nests deeper than " + std::to_string(max_depth) + " levels");
  }
  json obj;
  try {
    obj = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    return bad_request(std::string("invalid JSON body: ") + e.what());
  }
  if (!obj.is_object()) return bad_request("request body must be a JSON object, got " + type_name(obj));
  return obj;
}

std::string body_model_field(std::string_view body, const RequestLimits& limits) {
  auto parsed = parse_json_object(body, limits.max_json_depth);
  if (!parsed.ok()) return "";
  auto it = parsed.value().find("model");
  if (it == parsed.value().end() || !it->is_string()) return "";
  return it->get<std::string>().substr(0, 128);
}

ApiResult<GenerationSpec> parse_completion_request(std::string_view body, const RequestLimits& limits) {
  auto parsed = parse_json_object(body, limits.max_json_depth);
  if (!parsed.ok()) return parsed.error();
  const json& obj = parsed.value();
  static const std::set<std::string> kKeys = [] {
    std::set<std::string> k = kCommonKeys;
    k.insert({"prompt", "max_completion_tokens"});
    return k;
  }();
  static const std::set<std::string> kUnsupported = [] {
    std::set<std::string> k = kUnsupportedKeys;
    k.insert("messages");
    return k;
  }();
  if (auto e = check_known_keys(obj, kKeys, kUnsupported)) {
    // echo=false and suffix="" change nothing; accept them.
    bool harmless = (e->param == "echo" && obj["echo"] == false) || (e->param == "suffix" && obj["suffix"] == "");
    if (!harmless || obj.size() > 64) return *e;
    json copy = obj;
    copy.erase(e->param);
    return parse_completion_request(copy.dump(), limits);
  }
  GenerationSpec spec;
  spec.endpoint = Endpoint::kCompletions;
  spec.add_special_tokens = true;
  spec.sampling.max_tokens = 16;  // OpenAI's default for completions
  if (auto e = parse_common(obj, limits, &spec)) return *e;
  const json* prompt = find(obj, "prompt");
  if (!prompt) return bad_request("'prompt' is required", "prompt");
  if (auto e = parse_prompt(*prompt, limits, &spec.prompts)) return *e;
  if (const json* lp = find(obj, "logprobs")) {
    if (lp->is_boolean()) return wrong_type("logprobs", "an integer (number of top logprobs)", *lp);
    TRY(get_int32(obj, "logprobs", 0, limits.max_logprobs, &spec.sampling.logprobs));
  }
  if (static_cast<int64_t>(spec.prompts.size()) * spec.sampling.n > 4096) {
    return bad_request("prompts x n = " + std::to_string(spec.prompts.size() * spec.sampling.n) +
                           " choices; the limit is 4096",
                       "n");
  }
  return spec;
}

ApiResult<GenerationSpec> parse_chat_request(std::string_view body, const RequestLimits& limits) {
  auto parsed = parse_json_object(body, limits.max_json_depth);
  if (!parsed.ok()) return parsed.error();
  const json& obj = parsed.value();
  static const std::set<std::string> kKeys = [] {
    std::set<std::string> k = kCommonKeys;
    k.insert({"messages", "max_completion_tokens", "top_logprobs", "add_generation_prompt"});
    return k;
  }();
  static const std::set<std::string> kUnsupported = [] {
    std::set<std::string> k = kUnsupportedKeys;
    k.insert("prompt");
    return k;
  }();
  // tools: [] / tool_choice: "none" / parallel_tool_calls ask for nothing; accept them.
  json filtered = obj;
  if (filtered.contains("tools") && filtered["tools"].is_array() && filtered["tools"].empty()) filtered.erase("tools");
  if (filtered.contains("tool_choice") && filtered["tool_choice"] == "none") filtered.erase("tool_choice");
  if (filtered.contains("parallel_tool_calls") && filtered["parallel_tool_calls"].is_boolean() &&
      !filtered.contains("tools")) {
    filtered.erase("parallel_tool_calls");
  }
  if (auto e = check_known_keys(filtered, kKeys, kUnsupported)) {
    if (e->param == "tools" || e->param == "tool_choice" || e->param == "functions") {
      e->message = "parameter '" + e->param + "' is not supported by this server (tool calling is not implemented)";
    }
    return *e;
  }
  GenerationSpec spec;
  spec.endpoint = Endpoint::kChat;
  spec.add_special_tokens = false;  // the chat template carries the special tokens
  if (auto e = parse_common(obj, limits, &spec)) return *e;
  if (auto e = parse_messages(obj, &spec.messages)) return *e;
  TRY(get_bool(obj, "add_generation_prompt", &spec.add_generation_prompt));
  bool logprobs = false;
  TRY(get_bool(obj, "logprobs", &logprobs));
  int top = -1;
  TRY(get_int32(obj, "top_logprobs", 0, limits.max_logprobs, &top));
  if (top >= 0 && !logprobs) return bad_request("'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
  spec.sampling.logprobs = logprobs ? std::max(top, 0) : -1;
  return spec;
}

ApiResult<TokenizeSpec> parse_tokenize_request(std::string_view body, const RequestLimits& limits) {
  auto parsed = parse_json_object(body, limits.max_json_depth);
  if (!parsed.ok()) return parsed.error();
  const json& obj = parsed.value();
  static const std::set<std::string> kKeys = {"model",  "prompt", "messages", "add_generation_prompt",
                                              "add_special_tokens", "return_token_strs"};
  if (auto e = check_known_keys(obj, kKeys, {"tools", "chat_template", "chat_template_kwargs"})) return *e;
  TokenizeSpec spec;
  const json* model = find(obj, "model");
  if (!model) return bad_request("'model' is required", "model");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  spec.model = model->get<std::string>();
  const bool has_prompt = find(obj, "prompt") != nullptr, has_messages = find(obj, "messages") != nullptr;
  if (has_prompt == has_messages) return bad_request("exactly one of 'prompt' and 'messages' is required", "prompt");
  if (has_prompt) {
    TRY(get_string(obj, "prompt", &spec.prompt));
    spec.add_special_tokens = true;
  } else {
    spec.is_chat = true;
    spec.add_special_tokens = false;
    if (auto e = parse_messages(obj, &spec.messages)) return *e;
    TRY(get_bool(obj, "add_generation_prompt", &spec.add_generation_prompt));
  }
  TRY(get_bool(obj, "add_special_tokens", &spec.add_special_tokens));
  TRY(get_bool(obj, "return_token_strs", &spec.return_token_strs));
  return spec;
}

ApiResult<DetokenizeSpec> parse_detokenize_request(std::string_view body, const RequestLimits& limits) {
  auto parsed = parse_json_object(body, limits.max_json_depth);
  if (!parsed.ok()) return parsed.error();
  const json& obj = parsed.value();
  if (auto e = check_known_keys(obj, {"model", "tokens"}, {})) return *e;
  DetokenizeSpec spec;
  const json* model = find(obj, "model");
  if (!model) return bad_request("'model' is required", "model");
  if (!model->is_string()) return wrong_type("model", "a string", *model);
  spec.model = model->get<std::string>();
  const json* tokens = find(obj, "tokens");
  if (!tokens) return bad_request("'tokens' is required", "tokens");
  TRY(get_token_list(*tokens, "tokens", &spec.tokens, /*allow_empty=*/true));
  return spec;
}

}  // namespace tandem::server
