#include "bench/prompts.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>

namespace tandem::bench {
namespace {

// Common lowercase English words: each is one token (after a space) in the
// byte-level BPE and SentencePiece vocabularies of the models we serve, which
// makes reaching an exact length take one or two /tokenize calls.
const char* const kWords[] = {
    "the",   "of",     "and",   "to",    "in",     "is",    "for",   "on",    "with",  "as",    "was",
    "at",    "by",     "from",  "his",   "an",     "were",  "are",   "which", "this",  "be",    "or",
    "had",   "not",    "but",   "first", "one",    "their", "its",   "new",   "after", "who",   "they",
    "have",  "her",    "she",   "two",   "been",   "other", "when",  "there", "all",   "during", "into",
    "school", "time",  "may",   "years", "more",   "most",  "only",  "over",  "city",  "some",  "world",
    "would", "where",  "later", "up",    "such",   "used",  "many",  "can",   "state", "about", "national",
    "out",   "known",  "university", "united", "then", "made", "year",  "part",  "these", "under", "between",
    "three", "while",  "second", "would", "team",   "early", "since", "film",  "what",  "people", "called",
    "name",  "game",   "life",  "work",  "water",  "house", "music", "area",  "group", "long",  "back",
    "day",   "place",  "high",  "small", "great",  "old",   "family", "point", "south", "north", "west",
    "east",  "river",  "book",  "light", "world",  "power", "field", "show",  "line",  "local", "road",
};
constexpr int kNumWords = sizeof(kWords) / sizeof(kWords[0]);

std::string join_words(const std::vector<int>& words, int n) {
  std::string text;
  for (int i = 0; i < n; ++i) {
    if (i) text += ' ';
    text += kWords[words[i]];
  }
  return text;
}

}  // namespace

StatusOr<int> ServerTokenCounter::count(const std::string& model, const std::string& text) {
  auto parse_tokens = [](const nlohmann::json& j) -> std::optional<int> {
    if (!j.is_object()) return std::nullopt;
    if (auto it = j.find("count"); it != j.end() && it->is_number_integer()) return it->get<int>();
    if (auto it = j.find("tokens"); it != j.end() && it->is_array()) return static_cast<int>(it->size());
    return std::nullopt;
  };
  std::string where = "POST " + address_.host_header() + address_.path_prefix + "/tokenize";
  if (!llama_cpp_shape_) {
    nlohmann::json req = {{"model", model}, {"prompt", text}};
    ASSIGN_OR_RETURN(auto resp, http_post_json(address_, address_.path_prefix + "/tokenize", req.dump(), api_key_,
                                               timeout_s_));
    if (resp.status == 200) {
      auto j = nlohmann::json::parse(resp.body, nullptr, false);
      if (auto n = parse_tokens(j)) return *n;
      return invalid_argument(where + ": response has neither \"count\" nor \"tokens\"");
    }
    if (resp.status == 401 || resp.status == 403)
      return invalid_argument(where + ": HTTP " + std::to_string(resp.status) + " (check --api-key)");
    if (resp.status != 400 && resp.status != 404 && resp.status != 422)
      return unavailable(where + ": HTTP " + std::to_string(resp.status) + ": " + resp.body.substr(0, 200));
    llama_cpp_shape_ = true;  // try llama.cpp's shape once, then keep to it
  }
  nlohmann::json req = {{"content", text}, {"add_special", true}};
  ASSIGN_OR_RETURN(auto resp, http_post_json(address_, address_.path_prefix + "/tokenize", req.dump(), api_key_,
                                             timeout_s_));
  if (resp.status != 200)
    return unavailable(where + ": HTTP " + std::to_string(resp.status) +
                       " (the server has no vLLM- or llama.cpp-style /tokenize; pass --tokenizer PATH or --dataset)");
  auto j = nlohmann::json::parse(resp.body, nullptr, false);
  if (auto n = parse_tokens(j)) return *n;
  return invalid_argument(where + ": response has no \"tokens\" array");
}

StatusOr<std::unique_ptr<LocalTokenCounter>> LocalTokenCounter::load(const std::vector<std::string>& paths,
                                                                      const std::vector<std::string>& models) {
  auto counter = std::make_unique<LocalTokenCounter>();
  counter->models_ = models;
  for (const auto& path : paths) {
    auto t = Tokenizer::load(path);
    if (!t.ok()) return invalid_argument("--tokenizer " + path + ": " + t.status().message());
    counter->tokenizers_.push_back(std::move(t).value());
  }
  return counter;
}

StatusOr<int> LocalTokenCounter::count(const std::string& model, const std::string& text) {
  size_t i = 0;
  if (tokenizers_.size() > 1) {
    auto it = std::find(models_.begin(), models_.end(), model);
    if (it == models_.end()) return not_found("no --tokenizer for model " + model);
    i = static_cast<size_t>(it - models_.begin());
  }
  return static_cast<int>(tokenizers_[i]->encode(text, /*add_special_tokens=*/true).size());
}

std::vector<int> assign_models(int num_prompts, const std::vector<double>& weights, std::mt19937_64& rng) {
  const size_t m = weights.size();
  double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<int> counts(m);
  std::vector<std::pair<double, size_t>> remainders;
  int assigned = 0;
  for (size_t i = 0; i < m; ++i) {
    double exact = num_prompts * weights[i] / total;
    counts[i] = static_cast<int>(std::floor(exact));
    assigned += counts[i];
    remainders.push_back({exact - counts[i], i});
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (size_t k = 0; assigned < num_prompts; ++k, ++assigned) ++counts[remainders[k % m].second];
  std::vector<int> out;
  out.reserve(num_prompts);
  for (size_t i = 0; i < m; ++i) out.insert(out.end(), counts[i], static_cast<int>(i));
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

std::vector<double> arrival_times(int num_prompts, double rate, double burstiness, uint64_t seed) {
  std::vector<double> t(num_prompts, 0.0);
  if (std::isinf(rate)) return t;
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::gamma_distribution<double> gap(burstiness, 1.0 / (rate * burstiness));
  for (int i = 1; i < num_prompts; ++i) t[i] = t[i - 1] + gap(rng);
  return t;
}

std::vector<int> sample_lengths(int n, int len, double range_ratio, std::mt19937_64& rng) {
  int lo = std::max(1, static_cast<int>(std::floor(len * (1 - range_ratio))));
  int hi = std::max(lo, static_cast<int>(std::ceil(len * (1 + range_ratio))));
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int> out(n);
  for (auto& v : out) v = dist(rng);
  return out;
}

namespace {

StatusOr<std::string> build_prompt_impl(TokenCounter& counter, const std::string& model, int target,
                                        std::mt19937_64& rng, int* actual, int* overhead) {
  std::uniform_int_distribution<int> pick(0, kNumWords - 1);
  std::vector<int> words;
  auto ensure = [&](int n) {
    while (static_cast<int>(words.size()) < n) words.push_back(pick(rng));
  };
  std::map<int, int> seen;  // words -> tokens
  int n = std::max(1, target - *overhead);
  for (int iter = 0; iter < 12; ++iter) {
    ensure(n);
    std::string text = join_words(words, n);
    ASSIGN_OR_RETURN(int c, counter.count(model, text));
    seen[n] = c;
    if (c == target) {
      *actual = c;
      *overhead = c - n;
      return text;
    }
    int next = std::max(1, n + (target - c));
    if (seen.count(next)) break;
    n = next;
  }
  // Not reached: some word after the longest prefix under the target is several
  // tokens. Redraw that next word a few times; else keep the longest prefix at or
  // under the target (or the shortest over it).
  int best_n = -1;
  for (auto [k, c] : seen)
    if (c <= target && (best_n < 0 || c > seen[best_n])) best_n = k;
  if (best_n >= 0) {
    ensure(best_n + 1);
    for (int attempt = 0; attempt < 16; ++attempt) {
      words[best_n] = pick(rng);
      std::string text = join_words(words, best_n + 1);
      ASSIGN_OR_RETURN(int c, counter.count(model, text));
      if (c == target) {
        *actual = c;
        return text;
      }
    }
  } else {
    best_n = seen.begin()->first;
  }
  *actual = seen[best_n];
  return join_words(words, best_n);
}

}  // namespace

StatusOr<std::string> build_prompt(TokenCounter& counter, const std::string& model, int target,
                                   std::mt19937_64& rng, int* actual) {
  int overhead = 1;
  return build_prompt_impl(counter, model, target, rng, actual, &overhead);
}

std::string request_body(const BenchOptions& options, const std::string& model, const nlohmann::json& prompt,
                         int max_tokens) {
  nlohmann::json body = {
      {"model", model},
      {"max_tokens", max_tokens},
      {"temperature", 0.0},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
  };
  if (options.ignore_eos) body["ignore_eos"] = true;
  if (options.endpoint == Endpoint::kCompletions) {
    body["prompt"] = prompt;
  } else if (prompt.is_string()) {
    body["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", prompt}}});
  } else {
    body["messages"] = prompt;
  }
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

StatusOr<std::vector<PlannedRequest>> plan_synthetic(const BenchOptions& options, TokenCounter& counter) {
  std::mt19937_64 rng(options.seed);
  std::vector<double> weights = options.mix.empty() ? std::vector<double>(options.models.size(), 1.0) : options.mix;
  auto models = assign_models(options.num_prompts, weights, rng);
  auto in_lens = sample_lengths(options.num_prompts, options.input_len, options.range_ratio, rng);
  auto out_lens = sample_lengths(options.num_prompts, options.output_len, options.range_ratio, rng);
  std::vector<int> overhead(options.models.size(), 1);  // special tokens the tokenizer adds, learned per model
  std::vector<PlannedRequest> out(options.num_prompts);
  for (int i = 0; i < options.num_prompts; ++i) {
    auto& r = out[i];
    r.model_index = models[i];
    r.max_tokens = out_lens[i];
    const std::string& model = options.models[r.model_index];
    ASSIGN_OR_RETURN(std::string text,
                     build_prompt_impl(counter, model, in_lens[i], rng, &r.prompt_len, &overhead[r.model_index]));
    r.off_target = r.prompt_len != in_lens[i];
    r.body = request_body(options, model, text, r.max_tokens);
  }
  return out;
}

StatusOr<std::vector<PlannedRequest>> plan_dataset(const BenchOptions& options) {
  std::ifstream in(options.dataset);
  if (!in) return not_found("--dataset " + options.dataset + ": cannot open");
  struct Item {
    nlohmann::json prompt;
    int max_tokens;
  };
  std::vector<Item> items;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = options.dataset + ":" + std::to_string(line_no) + ": ";
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return invalid_argument(where + "not a JSON object");
    Item item{nullptr, options.output_len};
    if (j.contains("prompt")) {
      if (!j["prompt"].is_string()) return invalid_argument(where + "\"prompt\" is not a string");
      item.prompt = j["prompt"];
    } else if (j.contains("messages")) {
      if (!j["messages"].is_array() || j["messages"].empty())
        return invalid_argument(where + "\"messages\" is not a non-empty array");
      if (options.endpoint != Endpoint::kChat)
        return invalid_argument(where + "\"messages\" needs --endpoint chat");
      item.prompt = j["messages"];
    } else {
      return invalid_argument(where + "has neither \"prompt\" nor \"messages\"");
    }
    if (j.contains("max_tokens")) {
      if (!j["max_tokens"].is_number_integer() || j["max_tokens"].get<int64_t>() <= 0 ||
          j["max_tokens"].get<int64_t>() > std::numeric_limits<int>::max())
        return invalid_argument(where + "\"max_tokens\" is not a positive integer");
      item.max_tokens = j["max_tokens"].get<int>();
    }
    items.push_back(std::move(item));
  }
  if (items.empty()) return invalid_argument("--dataset " + options.dataset + ": no requests in the file");
  std::mt19937_64 rng(options.seed);
  std::vector<double> weights = options.mix.empty() ? std::vector<double>(options.models.size(), 1.0) : options.mix;
  auto models = assign_models(options.num_prompts, weights, rng);
  std::vector<PlannedRequest> out(options.num_prompts);
  for (int i = 0; i < options.num_prompts; ++i) {
    const Item& item = items[i % items.size()];
    out[i].model_index = models[i];
    out[i].max_tokens = item.max_tokens;
    out[i].body = request_body(options, options.models[models[i]], item.prompt, item.max_tokens);
  }
  return out;
}

}  // namespace tandem::bench
