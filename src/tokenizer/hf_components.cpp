#include "tokenizer/hf_components.h"

#include <nlohmann/json.hpp>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tandem::hf {
namespace {

using json = nlohmann::json;

std::string type_of(const json& j) {
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>()
                                                                       : "";
}

std::string str_or(const json& j, const char* key, std::string dflt) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : dflt;
}

bool bool_or(const json& j, const char* key, bool dflt) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : dflt;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty() || s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos);
  s.swap(out);
}

// A {"String": "..."} or {"Regex": "..."} pattern.
StatusOr<std::unique_ptr<Regex>> make_pattern(const json& j, const std::string& where) {
  if (j.is_object() && j.contains("String") && j["String"].is_string())
    return Regex::compile(j["String"].get<std::string>(), /*literal=*/true);
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string())
    return Regex::compile(j["Regex"].get<std::string>(), /*literal=*/false);
  return invalid_argument(where + ": pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

// ---- normalizers ----

class NfcNormalizer final : public Normalizer {
 public:
  void normalize(std::string& s) const override { s = unicode::nfc(s); }
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string p) : prepend_(std::move(p)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> re, std::string content)
      : re_(std::move(re)), content_(std::move(content)) {}
  void normalize(std::string& s) const override {
    std::vector<std::pair<size_t, size_t>> m;
    re_->find_all(s, m);
    if (m.empty()) return;
    std::string out;
    size_t pos = 0;
    for (auto [b, e] : m) {
      out.append(s, pos, b - pos);
      out.append(content_);
      pos = e;
    }
    out.append(s, pos);
    s.swap(out);
  }

 private:
  std::unique_ptr<Regex> re_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> v) : steps_(std::move(v)) {}
  void normalize(std::string& s) const override {
    for (const auto& n : steps_) n->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// ---- pre-tokenizers ----

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

StatusOr<SplitBehavior> parse_behavior(const std::string& b) {
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return invalid_argument("unknown split behavior '" + b + "'");
}

// Splits `s` at the spans in `m` the way tokenizers' NormalizedString::split does.
void split_by_matches(const std::string& s, const std::vector<std::pair<size_t, size_t>>& m,
                      SplitBehavior behavior, bool invert, std::vector<std::string>& out) {
  struct Span {
    size_t b, e;
    bool is_match;
  };
  std::vector<Span> spans;
  size_t pos = 0;
  for (auto [b, e] : m) {
    if (b > pos) spans.push_back({pos, b, invert});
    spans.push_back({b, e, !invert});
    pos = e;
  }
  if (pos < s.size()) spans.push_back({pos, s.size(), invert});

  std::vector<std::pair<size_t, size_t>> parts;
  bool prev_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& sp : spans)
        if (!sp.is_match) parts.emplace_back(sp.b, sp.e);
      break;
    case SplitBehavior::kIsolated:
      for (const auto& sp : spans) parts.emplace_back(sp.b, sp.e);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const auto& sp : spans) {
        if (sp.is_match && !prev_match && !parts.empty()) parts.back().second = sp.e;
        else parts.emplace_back(sp.b, sp.e);
        prev_match = sp.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t i = spans.size(); i-- > 0;) {
        const auto& sp = spans[i];
        if (sp.is_match && !prev_match && !parts.empty()) parts.back().first = sp.b;
        else parts.emplace_back(sp.b, sp.e);
        prev_match = sp.is_match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
    case SplitBehavior::kContiguous:
      for (size_t i = 0; i < spans.size(); ++i) {
        const auto& sp = spans[i];
        if (i > 0 && sp.is_match == prev_match) parts.back().second = sp.e;
        else parts.emplace_back(sp.b, sp.e);
        prev_match = sp.is_match;
      }
      break;
  }
  for (auto [b, e] : parts)
    if (e > b) out.emplace_back(s, b, e - b);
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> re, SplitBehavior b, bool invert)
      : re_(std::move(re)), behavior_(b), invert_(invert) {}
  void apply(std::vector<std::string>& pieces, bool) const override {
    std::vector<std::string> out;
    out.reserve(pieces.size() * 4);
    std::vector<std::pair<size_t, size_t>> m;
    for (const auto& p : pieces) {
      m.clear();
      re_->find_all(p, m);
      split_by_matches(p, m, behavior_, invert_, out);
    }
    pieces.swap(out);
  }

 private:
  std::unique_ptr<Regex> re_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's pattern, used by ByteLevel with use_regex.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Regex> re)
      : add_prefix_space_(add_prefix_space), re_(std::move(re)) {}
  void apply(std::vector<std::string>& pieces, bool) const override {
    if (add_prefix_space_)
      for (auto& p : pieces)
        if (p.empty() || p[0] != ' ') p.insert(0, " ");
    if (!re_) return;
    std::vector<std::string> out;
    std::vector<std::pair<size_t, size_t>> m;
    for (const auto& p : pieces) {
      m.clear();
      re_->find_all(p, m);
      split_by_matches(p, m, SplitBehavior::kIsolated, false, out);
    }
    pieces.swap(out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;  // null without use_regex
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string rep, Prepend prepend, bool split)
      : rep_(std::move(rep)), prepend_(prepend), split_(split) {}
  void apply(std::vector<std::string>& pieces, bool at_start) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string p = pieces[i];
      replace_all(p, " ", rep_);
      const bool want = prepend_ == Prepend::kAlways ||
                        (prepend_ == Prepend::kFirst && at_start && i == 0);
      if (want && p.compare(0, rep_.size(), rep_) != 0) p.insert(0, rep_);
      if (!split_) {
        out.push_back(std::move(p));
        continue;
      }
      std::vector<std::pair<size_t, size_t>> m;
      for (size_t pos = 0; (pos = p.find(rep_, pos)) != std::string::npos; pos += rep_.size())
        m.emplace_back(pos, pos + rep_.size());
      split_by_matches(p, m, SplitBehavior::kMergedWithNext, false, out);
    }
    pieces.swap(out);
  }

 private:
  std::string rep_;
  Prepend prepend_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> v)
      : steps_(std::move(v)) {}
  void apply(std::vector<std::string>& pieces, bool at_start) const override {
    for (const auto& s : steps_) s->apply(pieces, at_start);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

StatusOr<std::unique_ptr<PreTokenizer>> make_pre_tokenizer_inner(const json& j, bool* byte_level,
                                                                 bool last) {
  const std::string t = type_of(j);
  if (t == "Sequence") {
    const json& list = j.contains("pretokenizers") ? j["pretokenizers"] : json::array();
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      ASSIGN_OR_RETURN(auto s, make_pre_tokenizer_inner(list[i], byte_level,
                                                        last && i + 1 == list.size()));
      steps.push_back(std::move(s));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePreTokenizer(std::move(steps)));
  }
  if (t == "Split") {
    ASSIGN_OR_RETURN(auto re, make_pattern(j.value("pattern", json()), "pre_tokenizer Split"));
    ASSIGN_OR_RETURN(auto b, parse_behavior(str_or(j, "behavior", "Isolated")));
    return std::unique_ptr<PreTokenizer>(
        new SplitPreTokenizer(std::move(re), b, bool_or(j, "invert", false)));
  }
  if (t == "ByteLevel") {
    if (!last)
      return unimplemented("pre_tokenizer ByteLevel followed by other pre-tokenizers");
    *byte_level = true;
    std::unique_ptr<Regex> re;
    if (bool_or(j, "use_regex", true)) {
      ASSIGN_OR_RETURN(re, Regex::compile(kGpt2Pattern, false));
    }
    return std::unique_ptr<PreTokenizer>(
        new ByteLevelPreTokenizer(bool_or(j, "add_prefix_space", true), std::move(re)));
  }
  if (t == "Metaspace") {
    std::string rep = str_or(j, "replacement", "\u2581");
    std::string scheme = str_or(j, "prepend_scheme", "");
    if (scheme.empty()) scheme = bool_or(j, "add_prefix_space", true) ? "always" : "never";
    MetaspacePreTokenizer::Prepend p;
    if (scheme == "always") p = MetaspacePreTokenizer::Prepend::kAlways;
    else if (scheme == "first") p = MetaspacePreTokenizer::Prepend::kFirst;
    else if (scheme == "never") p = MetaspacePreTokenizer::Prepend::kNever;
    else return invalid_argument("pre_tokenizer Metaspace: unknown prepend_scheme '" + scheme + "'");
    return std::unique_ptr<PreTokenizer>(
        new MetaspacePreTokenizer(std::move(rep), p, bool_or(j, "split", true)));
  }
  if (t == "Digits") {
    const bool individual = bool_or(j, "individual_digits", false);
    ASSIGN_OR_RETURN(auto re, Regex::compile(individual ? "\\p{N}" : "\\p{N}+", false));
    return std::unique_ptr<PreTokenizer>(
        new SplitPreTokenizer(std::move(re), SplitBehavior::kIsolated, false));
  }
  return unimplemented("unsupported pre_tokenizer type '" + t + "'");
}

// ---- decoders ----

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      const size_t mark = bytes.size();
      if (!byte_level_map().to_bytes(t, bytes)) {
        bytes.resize(mark);
        bytes += t;  // not byte-level text (an added token): its own UTF-8
      }
    }
    tokens.assign(1, unicode::to_valid_utf8(bytes));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::unique_ptr<Regex> re, std::string content)
      : norm_(std::move(re), std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) norm_.normalize(t);
  }

 private:
  ReplaceNormalizer norm_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;      // bytes of consecutive <0xNN> tokens
    size_t run_count = 0;
    auto flush = [&] {
      if (!run_count) return;
      if (unicode::is_valid_utf8(run)) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run_count; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      run.clear();
      run_count = 0;
    };
    for (auto& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        auto hex = [](char c) {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          return -1;
        };
        const int hi = hex(t[3]), lo = hex(t[4]);
        if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
      }
      if (byte >= 0) {
        run.push_back(static_cast<char>(byte));
        ++run_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Strips up to `start` leading and `stop` trailing copies of one character from
// every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    const size_t n = content_.size();
    for (auto& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t i = 0; i < start_ && e - b >= n && t.compare(b, n, content_) == 0; ++i) b += n;
      for (size_t i = 0; i < stop_ && e - b >= n && t.compare(e - n, n, content_) == 0; ++i) e -= n;
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, bool prepend) : rep_(std::move(rep)), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i)
      replace_all(tokens[i], rep_, i == 0 && prepend_ ? "" : " ");
  }

 private:
  std::string rep_;
  bool prepend_;  // prepend_scheme != never: the first token's replacement chars vanish
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> v) : steps_(std::move(v)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : steps_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

ByteLevelMap::ByteLevelMap() {
  uint32_t n = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    byte_to_cp[b] = printable ? b : 256 + n++;
  }
}

bool ByteLevelMap::to_bytes(std::string_view token, std::string& out) const {
  for (size_t i = 0; i < token.size();) {
    if (!unicode::utf8_char_len(token.substr(i))) return false;
    const uint32_t cp = unicode::next_code_point(token, i);
    if (cp < 256) {
      const bool printable = (cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || cp >= 0xAE;
      if (!printable) return false;
      out.push_back(static_cast<char>(cp));
    } else if (cp < 256 + 68) {
      // The 68 non-printable bytes in order: 0x00-0x20, 0x7F-0xA0, 0xAD.
      const uint32_t k = cp - 256;
      const uint32_t b = k <= 0x20 ? k : k <= 0x20 + 34 ? 0x7F + (k - 0x21) : 0xAD;
      out.push_back(static_cast<char>(b));
    } else {
      return false;
    }
  }
  return true;
}

std::string ByteLevelMap::to_chars(std::string_view bytes) const {
  std::string out;
  for (char c : bytes) unicode::append_utf8(out, byte_to_cp[static_cast<uint8_t>(c)]);
  return out;
}

const ByteLevelMap& byte_level_map() {
  static const ByteLevelMap kMap;  // immutable after construction
  return kMap;
}

StatusOr<std::unique_ptr<Normalizer>> make_normalizer(const json& j) {
  const std::string t = type_of(j);
  if (t == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& s : j.value("normalizers", json::array())) {
      ASSIGN_OR_RETURN(auto n, make_normalizer(s));
      steps.push_back(std::move(n));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(steps)));
  }
  if (t == "NFC") return std::unique_ptr<Normalizer>(new NfcNormalizer());
  if (t == "Prepend")
    return std::unique_ptr<Normalizer>(new PrependNormalizer(str_or(j, "prepend", "")));
  if (t == "Replace") {
    ASSIGN_OR_RETURN(auto re, make_pattern(j.value("pattern", json()), "normalizer Replace"));
    return std::unique_ptr<Normalizer>(new ReplaceNormalizer(std::move(re), str_or(j, "content", "")));
  }
  return unimplemented("unsupported normalizer type '" + t + "'");
}

StatusOr<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const json& j, bool* byte_level) {
  *byte_level = false;
  return make_pre_tokenizer_inner(j, byte_level, /*last=*/true);
}

StatusOr<std::unique_ptr<Decoder>> make_decoder(const json& j) {
  const std::string t = type_of(j);
  if (t == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& s : j.value("decoders", json::array())) {
      ASSIGN_OR_RETURN(auto d, make_decoder(s));
      steps.push_back(std::move(d));
    }
    return std::unique_ptr<Decoder>(new SequenceDecoder(std::move(steps)));
  }
  if (t == "ByteLevel") return std::unique_ptr<Decoder>(new ByteLevelDecoder());
  if (t == "ByteFallback") return std::unique_ptr<Decoder>(new ByteFallbackDecoder());
  if (t == "Fuse") return std::unique_ptr<Decoder>(new FuseDecoder());
  if (t == "Replace") {
    ASSIGN_OR_RETURN(auto re, make_pattern(j.value("pattern", json()), "decoder Replace"));
    return std::unique_ptr<Decoder>(new ReplaceDecoder(std::move(re), str_or(j, "content", "")));
  }
  if (t == "Strip") {
    return std::unique_ptr<Decoder>(new StripDecoder(
        str_or(j, "content", " "), j.value("start", 0u), j.value("stop", 0u)));
  }
  if (t == "Metaspace") {
    std::string scheme = str_or(j, "prepend_scheme", "");
    if (scheme.empty()) scheme = bool_or(j, "add_prefix_space", true) ? "always" : "never";
    return std::unique_ptr<Decoder>(
        new MetaspaceDecoder(str_or(j, "replacement", "\u2581"), scheme != "never"));
  }
  return unimplemented("unsupported decoder type '" + t + "'");
}

StatusOr<PostProcessor> make_post_processor(const json& j) {
  PostProcessor pp;
  if (j.is_null()) return pp;
  const std::string t = type_of(j);
  if (t == "ByteLevel") return pp;  // only adjusts offsets
  if (t == "Sequence") {
    for (const auto& s : j.value("processors", json::array())) {
      ASSIGN_OR_RETURN(PostProcessor p, make_post_processor(s));
      pp.prefix.insert(pp.prefix.begin(), p.prefix.begin(), p.prefix.end());
      pp.suffix.insert(pp.suffix.end(), p.suffix.begin(), p.suffix.end());
    }
    return pp;
  }
  if (t == "TemplateProcessing") {
    const json& specials = j.value("special_tokens", json::object());
    bool seen_a = false;
    for (const auto& item : j.value("single", json::array())) {
      if (item.contains("Sequence")) {
        seen_a = true;
        continue;
      }
      if (!item.contains("SpecialToken"))
        return invalid_argument("post_processor TemplateProcessing: unknown item " + item.dump());
      const std::string name = item["SpecialToken"].value("id", "");
      auto it = specials.find(name);
      if (it == specials.end() || !it->contains("ids"))
        return invalid_argument("post_processor TemplateProcessing: special token '" + name +
                                "' has no ids");
      auto& dst = seen_a ? pp.suffix : pp.prefix;
      for (const auto& id : (*it)["ids"]) dst.push_back(id.get<int32_t>());
    }
    return pp;
  }
  return unimplemented("unsupported post_processor type '" + t + "'");
}

}  // namespace tandem::hf
