#include "tokenizer/hf_tokenizer.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace tandem::hf {
namespace {

using json = nlohmann::json;

bool is_llama_class(const std::string& c) {
  return c == "LlamaTokenizer" || c == "LlamaTokenizerFast" || c == "CodeLlamaTokenizer" ||
         c == "CodeLlamaTokenizerFast" || c == "GemmaTokenizer" || c == "GemmaTokenizerFast";
}

}  // namespace

StatusOr<std::unique_ptr<HfTokenizer>> HfTokenizer::create(const std::string& json_text,
                                                           const std::string& name,
                                                           TokenizerConfig config) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument(name + ": not valid JSON");
  auto tok = std::unique_ptr<HfTokenizer>(new HfTokenizer());
  tok->config_ = std::move(config);
  auto fail = [&](const Status& s) { return Status(s.code(), name + ": " + s.message()); };
  try {
    if (!j.contains("model")) return invalid_argument(name + ": no \"model\"");
    if (j.contains("normalizer") && !j["normalizer"].is_null()) {
      auto n = make_normalizer(j["normalizer"]);
      if (!n.ok()) return fail(n.status());
      tok->normalizer_ = std::move(n).value();
    }
    bool byte_level = false;
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
      auto p = make_pre_tokenizer(j["pre_tokenizer"], &byte_level);
      if (!p.ok()) return fail(p.status());
      tok->pre_tokenizer_ = std::move(p).value();
    }
    auto m = BpeModel::load(j["model"], byte_level);
    if (!m.ok()) return fail(m.status());
    tok->model_ = std::move(m).value();
    if (j.contains("decoder") && !j["decoder"].is_null()) {
      auto d = make_decoder(j["decoder"]);
      if (!d.ok()) return fail(d.status());
      tok->decoder_ = std::move(d).value();
    }
    auto pp = make_post_processor(j.value("post_processor", json()));
    if (!pp.ok()) return fail(pp.status());
    tok->post_ = std::move(pp).value();

    tok->vocab_size_ = tok->model_->size();
    for (const auto& a : j.value("added_tokens", json::array())) {
      AddedToken t;
      t.id = a.at("id").get<int32_t>();
      t.content = a.at("content").get<std::string>();
      t.special = a.value("special", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.normalized = a.value("normalized", !t.special);
      t.single_word = a.value("single_word", false);
      if (t.id < 0) return invalid_argument(name + ": added token '" + t.content + "' has a negative id");
      tok->added_by_id_[t.id] = tok->added_tokens_.size();
      tok->added_by_content_[t.content] = t.id;
      tok->vocab_size_ = std::max(tok->vocab_size_, t.id + 1);
      tok->added_tokens_.push_back(std::move(t));
    }
  } catch (const json::exception& e) {
    return invalid_argument(name + ": malformed tokenizer.json: " + e.what());
  }

  std::vector<AddedToken> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (const auto& t : tok->added_tokens_) {
    if (t.normalized && tok->normalizer_) {
      std::string p = t.content;
      tok->normalizer_->normalize(p);
      norm.push_back(t);
      norm_pat.push_back(std::move(p));
    } else {
      raw.push_back(t);
      raw_pat.push_back(t.content);
    }
  }
  tok->raw_matcher_.build(raw, raw_pat);
  tok->normalized_matcher_.build(norm, norm_pat);

  // transformers' Llama/Gemma tokenizers rebuild the post-processor from
  // add_bos_token / add_eos_token in tokenizer_config.json.
  const auto& cfg = tok->config_;
  if (is_llama_class(cfg.tokenizer_class) && (cfg.add_bos_token || cfg.add_eos_token)) {
    PostProcessor pp;
    auto id_of = [&](const std::optional<std::string>& t) { return t ? tok->token_to_id(*t) : std::nullopt; };
    if (cfg.add_bos_token.value_or(true)) {
      if (auto id = id_of(cfg.bos_token)) pp.prefix.push_back(*id);
    }
    if (cfg.add_eos_token.value_or(false)) {
      if (auto id = id_of(cfg.eos_token)) pp.suffix.push_back(*id);
    }
    tok->post_ = pp;
  }
  return tok;
}

const AddedToken* HfTokenizer::added(int32_t id) const {
  auto it = added_by_id_.find(id);
  return it == added_by_id_.end() ? nullptr : &added_tokens_[it->second];
}

bool HfTokenizer::is_special(int32_t id) const {
  const AddedToken* t = added(id);
  return t && t->special;
}

std::optional<int32_t> HfTokenizer::token_to_id(std::string_view token) const {
  auto it = added_by_content_.find(token);
  if (it != added_by_content_.end()) return it->second;
  return model_->id_of(token);
}

std::string HfTokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* t = added(id)) return t->content;
  if (id >= 0 && id < model_->size()) return model_->token(id);
  return "";
}

std::optional<std::string> HfTokenizer::chat_template() const {
  for (const auto& t : config_.chat_templates)
    if (t.name == "default") return t.source;
  if (config_.chat_templates.size() == 1) return config_.chat_templates[0].source;
  return std::nullopt;
}

void HfTokenizer::encode_text(std::string text, bool at_start, std::vector<int32_t>& out) const {
  if (normalizer_) normalizer_->normalize(text);
  std::vector<Segment> segs;
  if (normalized_matcher_.empty()) segs.push_back({0, text.size(), -1});
  else normalized_matcher_.split(text, segs);
  std::vector<std::string> pieces;
  for (const Segment& s : segs) {
    if (s.token_id >= 0) {
      out.push_back(s.token_id);
      continue;
    }
    if (s.end == s.begin) continue;
    pieces.clear();
    pieces.emplace_back(text, s.begin, s.end - s.begin);
    if (pre_tokenizer_) pre_tokenizer_->apply(pieces, at_start && s.begin == 0);
    for (const auto& p : pieces) model_->encode_word(p, out);
  }
}

std::vector<int32_t> HfTokenizer::encode(std::string_view input, bool add_special_tokens) const {
  std::string valid;
  if (!unicode::is_valid_utf8(input)) {
    valid = unicode::to_valid_utf8(input);
    input = valid;
  }
  std::vector<int32_t> ids;
  ids.reserve(input.size() / 3 + 4);
  if (add_special_tokens) ids.insert(ids.end(), post_.prefix.begin(), post_.prefix.end());
  std::vector<Segment> segs;
  raw_matcher_.split(input, segs);
  for (const Segment& s : segs) {
    if (s.token_id >= 0) ids.push_back(s.token_id);
    else encode_text(std::string(input.substr(s.begin, s.end - s.begin)), s.begin == 0, ids);
  }
  if (add_special_tokens) ids.insert(ids.end(), post_.suffix.begin(), post_.suffix.end());
  return ids;
}

std::string HfTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* t = added(id)) {
      if (!(skip_special_tokens && t->special)) tokens.push_back(t->content);
    } else if (id >= 0 && id < model_->size()) {
      tokens.push_back(model_->token(id));
    }
  }
  if (!decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out += ' ';
      out += tokens[i];
    }
    return out;
  }
  decoder_->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace tandem::hf
