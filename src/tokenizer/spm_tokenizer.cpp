#include "tokenizer/spm_tokenizer.h"

#ifdef TANDEM_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

#include "tokenizer/added_vocab.h"
#include "tokenizer/unicode.h"

namespace tandem {

#ifdef TANDEM_HAVE_SENTENCEPIECE
namespace {

class SpmTokenizer final : public Tokenizer {
 public:
  SpmTokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp, TokenizerConfig config)
      : sp_(std::move(sp)), config_(std::move(config)) {
    std::vector<hf::AddedToken> specials;
    std::vector<std::string> patterns;
    for (int id = 0; id < sp_->GetPieceSize(); ++id) {
      if (!sp_->IsControl(id) && !sp_->IsUnknown(id)) continue;
      hf::AddedToken t;
      t.id = id;
      t.content = sp_->IdToPiece(id);
      t.special = true;
      patterns.push_back(t.content);
      specials.push_back(std::move(t));
    }
    matcher_.build(specials, patterns);
    if (!config_.bos_token && sp_->bos_id() >= 0) config_.bos_token = sp_->IdToPiece(sp_->bos_id());
    if (!config_.eos_token && sp_->eos_id() >= 0) config_.eos_token = sp_->IdToPiece(sp_->eos_id());
  }

  std::vector<int32_t> encode(std::string_view input, bool add_special_tokens) const override {
    std::string valid;
    if (!unicode::is_valid_utf8(input)) {
      valid = unicode::to_valid_utf8(input);
      input = valid;
    }
    std::vector<int32_t> ids;
    if (add_special_tokens && config_.add_bos_token.value_or(true) && sp_->bos_id() >= 0)
      ids.push_back(sp_->bos_id());
    std::vector<hf::Segment> segs;
    matcher_.split(input, segs);
    std::vector<int> part;
    for (const auto& s : segs) {
      if (s.token_id >= 0) {
        ids.push_back(s.token_id);
      } else if (s.end > s.begin) {
        part.clear();
        const auto st = sp_->Encode(input.substr(s.begin, s.end - s.begin), &part);
        if (st.ok()) ids.insert(ids.end(), part.begin(), part.end());
      }
    }
    if (add_special_tokens && config_.add_eos_token.value_or(false) && sp_->eos_id() >= 0)
      ids.push_back(sp_->eos_id());
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::string out, piece;
    std::vector<int> run;
    auto flush = [&] {
      if (run.empty()) return;
      piece.clear();
      if (sp_->Decode(run, &piece).ok()) out += piece;
      run.clear();
    };
    for (int32_t id : ids) {
      if (id < 0 || id >= sp_->GetPieceSize()) continue;
      if (is_special(id)) {
        flush();
        if (!skip_special_tokens) out += sp_->IdToPiece(id);
      } else {
        run.push_back(id);
      }
    }
    flush();
    return out;
  }

  int32_t vocab_size() const override { return sp_->GetPieceSize(); }
  bool is_special(int32_t id) const override {
    return id >= 0 && id < sp_->GetPieceSize() && (sp_->IsControl(id) || sp_->IsUnknown(id));
  }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    const int id = sp_->PieceToId(token);
    // PieceToId answers unk_id for unknown pieces; only accept a real match.
    if (id < 0 || sp_->IdToPiece(id) != token) return std::nullopt;
    return id;
  }
  std::string id_to_token(int32_t id) const override {
    return id >= 0 && id < sp_->GetPieceSize() ? sp_->IdToPiece(id) : std::string();
  }
  std::optional<std::string> bos_token() const override { return config_.bos_token; }
  std::optional<std::string> eos_token() const override { return config_.eos_token; }
  std::optional<std::string> chat_template() const override {
    for (const auto& t : config_.chat_templates)
      if (t.name == "default") return t.source;
    return std::nullopt;
  }
  std::vector<NamedChatTemplate> chat_templates() const override { return config_.chat_templates; }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  TokenizerConfig config_;
  hf::AddedTokenMatcher matcher_;
};

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> load_sentencepiece_tokenizer(const std::string& model_path,
                                                                  TokenizerConfig config) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto st = sp->Load(model_path);
  if (!st.ok()) return invalid_argument(model_path + ": not a SentencePiece model: " + st.ToString());
  return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(sp), std::move(config)));
}

#else

StatusOr<std::unique_ptr<Tokenizer>> load_sentencepiece_tokenizer(const std::string& model_path,
                                                                  TokenizerConfig) {
  return unimplemented(model_path +
                       ": SentencePiece models need libsentencepiece, which this build lacks "
                       "(install libsentencepiece-dev and reconfigure)");
}

#endif

}  // namespace tandem
