// Load-time errors name the unsupported component or the broken field, and
// small hand-made tokenizer.json files pin down pipeline behaviours.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace tandem::testing {
namespace {

using json = nlohmann::json;

// A tiny byte-level-free BPE: characters a b c, merges a b -> ab, ab c -> abc.
json tiny() {
  return json::parse(R"({
    "added_tokens": [
      {"id": 6, "content": "<eos>", "special": true, "lstrip": false, "rstrip": false, "normalized": false, "single_word": false},
      {"id": 7, "content": "[L]", "special": false, "lstrip": true, "rstrip": false, "normalized": false, "single_word": false},
      {"id": 8, "content": "[R]", "special": false, "lstrip": false, "rstrip": true, "normalized": false, "single_word": false},
      {"id": 9, "content": "ab", "special": false, "lstrip": false, "rstrip": false, "normalized": false, "single_word": true}
    ],
    "normalizer": null,
    "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": false},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<eos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<eos>": {"id": "<eos>", "ids": [6], "tokens": ["<eos>"]}}},
    "decoder": null,
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "<unk>": 5},
              "merges": ["a b", ["ab", "c"]], "unk_token": "<unk>", "fuse_unk": true}
  })");
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/tandem_tok_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return path_.string();
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

Status load_error(const json& j) {
  TempDir d;
  auto t = Tokenizer::load(d.write("tokenizer.json", j.dump()));
  return t.ok() ? Status() : t.status();
}

void expect_error_naming(const json& j, const std::string& needle) {
  const Status s = load_error(j);
  EXPECT_FALSE(s.ok()) << "expected a load error naming " << needle;
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("tokenizer.json"), std::string::npos) << "error names the file: " << s.message();
}

TEST(LoadErrors, UnknownComponentsAreNamed) {
  json j = tiny();
  j["model"]["type"] = "WordPiece";
  expect_error_naming(j, "model type 'WordPiece'");
  j = tiny();
  j["normalizer"] = {{"type", "BertNormalizer"}};
  expect_error_naming(j, "normalizer type 'BertNormalizer'");
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error_naming(j, "pre_tokenizer type 'Whitespace'");
  j = tiny();
  j["decoder"] = {{"type", "CTC"}};
  expect_error_naming(j, "decoder type 'CTC'");
  j = tiny();
  j["post_processor"] = {{"type", "RobertaProcessing"}};
  expect_error_naming(j, "post_processor type 'RobertaProcessing'");
  j = tiny();
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKD"}}}}};
  expect_error_naming(j, "normalizer type 'NFKD'");
}

TEST(LoadErrors, BrokenFieldsAreNamed) {
  json j = tiny();
  j["model"]["merges"] = {"a q"};
  expect_error_naming(j, "merges[0] 'a q'");
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_error_naming(j, "(unclosed");
  j = tiny();
  j["model"]["unk_token"] = "<nope>";
  expect_error_naming(j, "unk_token '<nope>'");
  j = tiny();
  j["model"]["vocab"] = "not an object";
  expect_error_naming(j, "vocab");
  j = tiny();
  j["added_tokens"][0]["id"] = "six";
  expect_error_naming(j, "malformed");

  TempDir d;
  auto t = Tokenizer::load(d.write("tokenizer.json", "{ not json"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("not valid JSON"), std::string::npos);
  t = Tokenizer::load(d.path() + "/missing");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  std::filesystem::remove(d.path() + "/tokenizer.json");
  t = Tokenizer::load(d.path());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no tokenizer.json or tokenizer.model"), std::string::npos);
  t = Tokenizer::load(d.write("tokenizer.model", "garbage"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tokenizer.model"), std::string::npos) << t.status().message();
}

TEST(TinyTokenizer, MergesUnkAddedTokensAndPostProcessor) {
  TempDir d;
  auto t = Tokenizer::load(d.write("tokenizer.json", tiny().dump()));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  const Tokenizer& tok = **t;
  EXPECT_EQ(ids_str(tok.encode("abc", false)), "4");
  EXPECT_EQ(ids_str(tok.encode("abc", true)), "6 4");
  EXPECT_EQ(ids_str(tok.encode("cab", false)), "2 3");
  EXPECT_EQ(ids_str(tok.encode("axxb", false)), "0 5 1");  // fused unknowns
  EXPECT_EQ(ids_str(tok.encode("a<eos>b", false)), "0 6 1");
  // lstrip eats the spaces before [L]; rstrip the spaces after [R].
  EXPECT_EQ(ids_str(tok.encode("a  [L]b", false)), "0 7 1");
  EXPECT_EQ(ids_str(tok.encode("a[R]  b", false)), "0 8 1");
  // single_word: "ab" is the added token only when not inside a word.
  EXPECT_EQ(ids_str(tok.encode("a  b", false)), "0 5 5 1");  // spaces are unknown
  EXPECT_EQ(ids_str(tok.encode("c ab c", false)), "2 5 9 5 2");
  EXPECT_EQ(ids_str(tok.encode("cabc", false)), "2 4");
  EXPECT_EQ(tok.vocab_size(), 10);
  EXPECT_TRUE(tok.is_special(6));
  EXPECT_FALSE(tok.is_special(7));
  EXPECT_EQ(tok.token_to_id("[R]"), 8);
  EXPECT_EQ(tok.token_to_id("abc"), 4);
  EXPECT_EQ(tok.token_to_id("zzz"), std::nullopt);
  EXPECT_EQ(tok.id_to_token(3), "ab");
  EXPECT_EQ(tok.id_to_token(99), "");
  // No decoder: tokens joined by spaces; special tokens can be skipped; bad ids skipped.
  const std::vector<int32_t> ids = {6, 4, 2, 99};
  EXPECT_EQ(tok.decode(ids, false), "<eos> abc c");
  EXPECT_EQ(tok.decode(ids, true), "abc c");
}

TEST(TinyTokenizer, MetaspaceAndSplitBehaviours) {
  json j = tiny();
  j["pre_tokenizer"] = json::parse(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true})");
  j["decoder"] = json::parse(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true})");
  j["model"]["vocab"] = json::parse(R"({"▁": 0, "a": 1, "b": 2, "▁a": 3, "<unk>": 4})");
  j["model"]["merges"] = json::parse(R"(["▁ a"])");
  j["added_tokens"] = json::array();
  TempDir d;
  auto t = Tokenizer::load(d.write("tokenizer.json", j.dump()));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(ids_str((*t)->encode("a ab", false)), "3 3 2");
  EXPECT_EQ((*t)->decode(std::vector<int32_t>{3, 3, 2}, false), "a ab");
}

TEST(Config, ChatTemplatesAndSpecialTokens) {
  TempDir d;
  d.write("tokenizer.json", tiny().dump());
  d.write("tokenizer_config.json", R"({"bos_token": {"content": "<eos>", "lstrip": false},
      "eos_token": "<eos>", "chat_template": [{"name": "default", "template": "{{ x }}"},
      {"name": "tool_use", "template": "{{ y }}"}]})");
  auto t = Tokenizer::load(d.path());
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ((*t)->bos_token(), "<eos>");
  EXPECT_EQ((*t)->eos_token(), "<eos>");
  EXPECT_EQ((*t)->chat_template(), "{{ x }}");
  ASSERT_EQ((*t)->chat_templates().size(), 2u);
  EXPECT_EQ((*t)->chat_templates()[1].name, "tool_use");

  d.write("tokenizer_config.json", R"({"chat_template": 42})");
  auto bad = Tokenizer::load(d.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("chat_template"), std::string::npos);

  d.write("tokenizer_config.json", R"({"eos_token": null})");
  d.write("chat_template.jinja", "{{ jinja_file }}");
  auto from_file = Tokenizer::load(d.path());
  ASSERT_TRUE(from_file.ok());
  EXPECT_EQ((*from_file)->chat_template(), "{{ jinja_file }}");
  EXPECT_EQ((*from_file)->eos_token(), std::nullopt);
}

TEST(Config, RealFolders) {
  const Tokenizer* qwen = get_tokenizer("qwen2_5");
  ASSERT_NE(qwen, nullptr);
  EXPECT_EQ(qwen->eos_token(), "<|im_end|>");
  EXPECT_EQ(qwen->bos_token(), std::nullopt);
  ASSERT_TRUE(qwen->chat_template().has_value());
  EXPECT_NE(qwen->chat_template()->find("<|im_start|>"), std::string::npos);
  const Tokenizer* ds = get_tokenizer("deepseek_v3");
  ASSERT_NE(ds, nullptr);
  EXPECT_EQ(ds->bos_token(), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(ids_str(ds->encode("hi", true)).substr(0, 2), "0 ");  // add_bos_token: true
  const Tokenizer* spm = get_tokenizer("llama2-spm");
  ASSERT_NE(spm, nullptr);
  EXPECT_EQ(spm->bos_token(), "<s>");
  EXPECT_EQ(spm->eos_token(), "</s>");
  EXPECT_EQ(spm->vocab_size(), 32000);
  EXPECT_TRUE(spm->is_special(1));
  EXPECT_EQ(spm->token_to_id("<s>"), 1);
  EXPECT_EQ(spm->token_to_id("no such piece"), std::nullopt);
}

}  // namespace
}  // namespace tandem::testing
