#include "bench/sse.h"

#include <nlohmann/json.hpp>

namespace tandem::bench {

std::vector<std::string> SseParser::feed(std::string_view bytes) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) {
      partial_line_.append(bytes.substr(pos));
      break;
    }
    if (partial_line_.empty()) {
      take_line(bytes.substr(pos, nl - pos), out);
    } else {
      partial_line_.append(bytes.substr(pos, nl - pos));
      std::string line = std::move(partial_line_);
      partial_line_.clear();
      take_line(line, out);
    }
    pos = nl + 1;
  }
  return out;
}

std::vector<std::string> SseParser::finish() {
  std::vector<std::string> out;
  if (!partial_line_.empty()) {
    std::string line = std::move(partial_line_);
    partial_line_.clear();
    take_line(line, out);
  }
  take_line("", out);
  return out;
}

void SseParser::take_line(std::string_view line, std::vector<std::string>& out) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) {  // end of event
    if (has_data_) out.push_back(std::move(data_));
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment / keep-alive
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  if (field != "data") return;  // event:, id:, retry: carry nothing we use
  std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (has_data_) data_ += '\n';
  data_.append(value);
  has_data_ = true;
}

namespace {

std::string snippet(std::string_view s) {
  std::string out(s.substr(0, 80));
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  if (s.size() > 80) out += "...";
  return out;
}

bool non_empty_string(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
}

}  // namespace

StatusOr<StreamChunk> parse_stream_chunk(std::string_view payload, Endpoint endpoint) {
  StreamChunk chunk;
  if (payload == "[DONE]") {
    chunk.done = true;
    return chunk;
  }
  nlohmann::json j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument("malformed SSE: data is not JSON: '" + snippet(payload) + "'");
  if (!j.is_object()) return invalid_argument("malformed SSE: data is not a JSON object: '" + snippet(payload) + "'");
  if (auto err = j.find("error"); err != j.end() && !err->is_null()) {
    std::string msg = err->is_object() && err->contains("message") && (*err)["message"].is_string()
                          ? (*err)["message"].get<std::string>()
                          : err->dump();
    chunk.server_error = msg.empty() ? "error object without a message" : msg;
    return chunk;
  }
  if (auto choices = j.find("choices"); choices != j.end() && !choices->is_null()) {
    if (!choices->is_array()) return invalid_argument("malformed SSE: \"choices\" is not an array");
    if (!choices->empty()) {
      const auto& c0 = (*choices)[0];
      if (!c0.is_object()) return invalid_argument("malformed SSE: choices[0] is not an object");
      chunk.has_choices = true;
      if (endpoint == Endpoint::kCompletions) {
        chunk.has_content = non_empty_string(c0, "text");
      } else {
        auto delta = c0.find("delta");
        if (delta != c0.end() && delta->is_object())
          chunk.has_content = non_empty_string(*delta, "content") || non_empty_string(*delta, "reasoning_content");
      }
    }
  }
  if (auto usage = j.find("usage"); usage != j.end() && usage->is_object()) {
    auto get = [&](const char* key, int& dst) {
      auto it = usage->find(key);
      if (it != usage->end() && it->is_number_integer()) dst = it->get<int>();
    };
    chunk.has_usage = usage->contains("completion_tokens");
    get("prompt_tokens", chunk.usage_prompt_tokens);
    get("completion_tokens", chunk.usage_completion_tokens);
  }
  return chunk;
}

}  // namespace tandem::bench
