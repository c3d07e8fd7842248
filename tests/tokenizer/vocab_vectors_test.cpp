// The text -> ids vectors that ship in the llama.cpp source bundle
// (models/ggml-vocab-*.gguf.inp/.out, made with HF tokenizers, no special
// tokens), for the vocabularies that are the same as our tokenizer files.
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace tandem::testing {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> read_vectors(const std::string& vocab) {
  const auto base = data_dir() / "llama-src" / "models" / ("ggml-vocab-" + vocab + ".gguf");
  std::ifstream fi(base.string() + ".inp", std::ios::binary), fo(base.string() + ".out");
  EXPECT_TRUE(fi && fo) << "missing " << base << ".inp/.out (run scripts/fetch_data.sh)";
  std::stringstream si, so;
  si << fi.rdbuf();
  so << fo.rdbuf();
  const std::string raw = si.str();
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(raw.substr(pos));
      break;
    }
    texts.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<Case> cases;
  std::string line;
  for (size_t i = 0; std::getline(so, line); ++i) {
    if (i >= texts.size()) break;
    Case c{texts[i], {}};
    std::istringstream ls(line);
    for (int32_t id; ls >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << vocab;
  EXPECT_GT(cases.size(), 40u) << vocab;
  return cases;
}

void check_vectors(const std::string& tokenizer, const std::string& vocab) {
  const Tokenizer* tok = get_tokenizer(tokenizer);
  ASSERT_NE(tok, nullptr);
  int failures = 0;
  for (const auto& c : read_vectors(vocab)) {
    const auto got = tok->encode(c.text, /*add_special_tokens=*/false);
    if (got != c.ids && ++failures <= 5) {
      ADD_FAILURE() << tokenizer << " text '" << c.text << "'\n  want " << ids_str(c.ids)
                    << "\n  got  " << ids_str(got);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(VocabVectors, Llama3MatchesLlamaBpe) { check_vectors("llama3", "llama-bpe"); }
TEST(VocabVectors, Qwen25MatchesQwen2) { check_vectors("qwen2_5", "qwen2"); }
TEST(VocabVectors, Llama2SentencePieceMatchesLlamaSpm) { check_vectors("llama2-spm", "llama-spm"); }

}  // namespace
}  // namespace tandem::testing
