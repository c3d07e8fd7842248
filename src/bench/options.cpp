#include "bench/options.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace tandem::bench {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      parts.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

// Whole string must be a finite number.
std::optional<double> to_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

const char* endpoint_name(Endpoint e) { return e == Endpoint::kChat ? "chat" : "completions"; }
const char* endpoint_path(Endpoint e) {
  return e == Endpoint::kChat ? "/v1/chat/completions" : "/v1/completions";
}

StatusOr<Slo> parse_slo(const std::string& text) {
  Slo slo;
  for (const auto& part : split(text, ',')) {
    auto eq = part.find('=');
    if (eq == std::string::npos) eq = part.find(':');  // vLLM writes ttft:200
    if (eq == std::string::npos)
      return invalid_argument("--slo: '" + part + "' is not NAME=VALUE (e.g. ttft=200ms)");
    std::string name = part.substr(0, eq), value = part.substr(eq + 1);
    double scale = 1e-3;  // bare numbers are milliseconds, as vLLM's --goodput
    for (auto [suffix, s] : {std::pair{"ms", 1e-3}, std::pair{"us", 1e-6}, std::pair{"s", 1.0}}) {
      std::string suf = suffix;
      if (value.size() > suf.size() && value.compare(value.size() - suf.size(), suf.size(), suf) == 0) {
        value.resize(value.size() - suf.size());
        scale = s;
        break;
      }
    }
    auto v = to_number(value);
    if (!v || *v <= 0) return invalid_argument("--slo: '" + part + "' needs a positive time (e.g. 200ms)");
    double seconds = *v * scale;
    if (name == "ttft") slo.ttft_s = seconds;
    else if (name == "tpot") slo.tpot_s = seconds;
    else if (name == "e2e" || name == "e2el") slo.e2e_s = seconds;
    else return invalid_argument("--slo: unknown metric '" + name + "' (ttft, tpot, e2e)");
  }
  return slo;
}

StatusOr<std::vector<double>> parse_rates(const std::string& text) {
  std::vector<double> rates;
  for (const auto& part : split(text, ',')) {
    if (part == "inf") {
      rates.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    auto v = to_number(part);
    if (!v || *v <= 0) return invalid_argument("request rate '" + part + "' is not a positive number or inf");
    rates.push_back(*v);
  }
  return rates;
}

StatusOr<std::vector<double>> parse_weights(const std::string& text) {
  std::vector<double> w;
  for (const auto& part : split(text, ',')) {
    auto v = to_number(part);
    if (!v || *v <= 0) return invalid_argument("--mix: weight '" + part + "' is not a positive number");
    w.push_back(*v);
  }
  return w;
}

std::string rate_to_string(double rate) {
  if (std::isinf(rate)) return "inf";
  std::ostringstream os;
  os << rate;
  return os.str();
}

Status BenchOptions::validate() const {
  if (base_url.rfind("http://", 0) != 0) {
    if (base_url.rfind("https://", 0) == 0)
      return invalid_argument("--base-url " + base_url + ": https is not supported (http:// only)");
    return invalid_argument("--base-url " + base_url + ": must start with http://");
  }
  if (models.empty()) return invalid_argument("--model: at least one model is needed");
  if (!mix.empty() && mix.size() != models.size())
    return invalid_argument("--mix has " + std::to_string(mix.size()) + " weights for " +
                            std::to_string(models.size()) + " models");
  if (num_prompts <= 0) return invalid_argument("--num-prompts must be positive");
  if (!(request_rate > 0)) return invalid_argument("--request-rate must be positive or inf");
  if (!(burstiness > 0) || std::isinf(burstiness)) return invalid_argument("--burstiness must be a positive number");
  if (max_concurrency < 0) return invalid_argument("--max-concurrency must be >= 0 (0: unlimited)");
  if (dataset.empty()) {
    if (input_len <= 0) return invalid_argument("--input-len must be positive");
    if (output_len <= 0) return invalid_argument("--output-len must be positive");
    if (range_ratio < 0 || range_ratio >= 1) return invalid_argument("--range-ratio must be in [0, 1)");
  }
  if (tokenizers.size() > 1 && tokenizers.size() != models.size())
    return invalid_argument("--tokenizer given " + std::to_string(tokenizers.size()) + " times for " +
                            std::to_string(models.size()) + " models (give one, or one per --model)");
  if (!tokenize_url.empty() && tokenize_url.rfind("http://", 0) != 0)
    return invalid_argument("--tokenize-url " + tokenize_url + ": must start with http://");
  if (!(timeout_s > 0)) return invalid_argument("--timeout must be positive");
  if (threads <= 0 || threads > 256) return invalid_argument("--threads must be in [1, 256]");
  return ok_status();
}

nlohmann::json BenchOptions::to_json() const {
  auto rate_json = [](double r) -> nlohmann::json {
    if (std::isinf(r)) return "inf";
    return r;
  };
  nlohmann::json slo_json = nlohmann::json::object();
  if (slo.ttft_s) slo_json["ttft_ms"] = *slo.ttft_s * 1e3;
  if (slo.tpot_s) slo_json["tpot_ms"] = *slo.tpot_s * 1e3;
  if (slo.e2e_s) slo_json["e2e_ms"] = *slo.e2e_s * 1e3;
  nlohmann::json rates = nlohmann::json::array();
  for (double r : sweep_rates) rates.push_back(rate_json(r));
  return {
      {"base_url", base_url},
      {"models", models},
      {"mix", mix},
      {"num_prompts", num_prompts},
      {"request_rate", rate_json(request_rate)},
      {"burstiness", burstiness},
      {"max_concurrency", max_concurrency},
      {"input_len", input_len},
      {"output_len", output_len},
      {"range_ratio", range_ratio},
      {"dataset", dataset},
      {"endpoint", endpoint_name(endpoint)},
      {"tokenizers", tokenizers},
      {"tokenize_url", tokenize_url},
      {"seed", seed},
      {"api_key_set", !api_key.empty()},  // never the key itself
      {"slo", slo_json},
      {"sweep_rates", rates},
      {"timeout_s", timeout_s},
      {"threads", threads},
      {"ignore_eos", ignore_eos},
      {"argv", argv},
  };
}

}  // namespace tandem::bench
