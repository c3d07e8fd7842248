#include "tokenizer/tokenizer.h"

#include <filesystem>

#include "tokenizer/hf_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/tokenizer_config.h"

namespace tandem {

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  if (!fs::exists(p, ec)) return not_found("tokenizer path " + path + " does not exist");
  fs::path json_path, dir;
  if (fs::is_directory(p, ec)) {
    dir = p;
    if (fs::exists(p / "tokenizer.json")) {
      json_path = p / "tokenizer.json";
    } else if (fs::exists(p / "tokenizer.model")) {
      ASSIGN_OR_RETURN(TokenizerConfig cfg, load_tokenizer_config(dir));
      return load_sentencepiece_tokenizer((p / "tokenizer.model").string(), std::move(cfg));
    } else {
      return not_found(path + ": no tokenizer.json or tokenizer.model in this folder");
    }
  } else {
    dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    if (p.extension() == ".model") {
      ASSIGN_OR_RETURN(TokenizerConfig cfg, load_tokenizer_config(dir));
      return load_sentencepiece_tokenizer(p.string(), std::move(cfg));
    }
    json_path = p;
  }
  ASSIGN_OR_RETURN(TokenizerConfig cfg, load_tokenizer_config(dir));
  ASSIGN_OR_RETURN(std::string text, read_file(json_path));
  ASSIGN_OR_RETURN(auto tok, hf::HfTokenizer::create(text, json_path.string(), std::move(cfg)));
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

}  // namespace tandem
