// UTF-8 repair and NFC against Python's answers (tests/tokenizer/data, made by
// scripts/gen/make_unicode_test_data.py), and invalid UTF-8 through encode().
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tokenizer/unicode.h"

namespace tandem::testing {
namespace {

std::string from_hex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

nlohmann::json cases() {
  std::ifstream f(std::string(TANDEM_SOURCE_DIR) + "/tests/tokenizer/data/unicode_cases.json");
  EXPECT_TRUE(f);
  return nlohmann::json::parse(f);
}

TEST(Unicode, InvalidUtf8ReplacedLikePython) {
  const auto c = cases();
  ASSERT_GE(c["invalid_utf8"].size(), 100u);
  for (const auto& e : c["invalid_utf8"]) {
    const std::string in = from_hex(e["in"]), want = from_hex(e["out"]);
    EXPECT_EQ(unicode::to_valid_utf8(in), want) << "input hex " << e["in"];
    EXPECT_TRUE(unicode::is_valid_utf8(want));
    EXPECT_EQ(unicode::is_valid_utf8(in), in == want) << e["in"];
  }
}

TEST(Unicode, NfcLikePython) {
  const auto c = cases();
  ASSERT_GE(c["nfc"].size(), 100u);
  for (const auto& e : c["nfc"]) {
    const std::string in = e["in"], want = e["out"];
    EXPECT_EQ(unicode::nfc(in), want) << e["in"].dump();
  }
  EXPECT_EQ(unicode::nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(unicode::nfc("e\xCC\x81"), "\xC3\xA9");  // e + U+0301 -> é
}

TEST(Unicode, CompletePrefix) {
  EXPECT_EQ(unicode::complete_utf8_prefix("abc"), 3u);
  EXPECT_EQ(unicode::complete_utf8_prefix("ab\xE2\x82"), 2u);      // € cut after 2 of 3 bytes
  EXPECT_EQ(unicode::complete_utf8_prefix("ab\xE2\x82\xAC"), 5u);  // complete €
  EXPECT_EQ(unicode::complete_utf8_prefix("\xF0\x9F\xA6"), 0u);    // 🦙 cut
  EXPECT_EQ(unicode::complete_utf8_prefix("a\xFF"), 2u);           // never valid: counts as complete
  EXPECT_EQ(unicode::complete_utf8_prefix("a\x80"), 2u);           // stray continuation byte
}

// Invalid input encodes exactly like its U+FFFD-repaired form, for every tokenizer.
TEST(Unicode, EncodeReplacesInvalidUtf8) {
  const std::vector<std::string> bad = {"abc\xFF" "def", "caf\xC3", "\xE2\x82 euro", "\xED\xA0\x80 surrogate",
                                        "\xC0\xAF overlong", "x\xF4\x90\x80\x80 too big", "\x80\x80\x80"};
  for (const char* name : {"qwen2_5", "llama3", "mistral", "deepseek_v3", "llama2-spm"}) {
    const Tokenizer* tok = get_tokenizer(name);
    ASSERT_NE(tok, nullptr);
    const auto fffd = tok->encode("\xEF\xBF\xBD", false);
    for (const auto& s : bad) {
      const std::string fixed = unicode::to_valid_utf8(s);
      ASSERT_NE(fixed, s);
      EXPECT_EQ(ids_str(tok->encode(s, false)), ids_str(tok->encode(fixed, false))) << name;
      EXPECT_EQ(tok->decode(tok->encode(s, false), false).find("\xEF\xBF\xBD") != std::string::npos, true)
          << name << ": U+FFFD must survive the round trip";
    }
    EXPECT_FALSE(fffd.empty()) << name;
  }
}

}  // namespace
}  // namespace tandem::testing

#include "tokenizer/regex.h"

namespace tandem::testing {
namespace {

// Split patterns are Oniguruma's: \s includes U+0085 there (not in plain PCRE2).
TEST(Regex, WhitespaceClassMatchesOniguruma) {
  std::vector<std::pair<size_t, size_t>> m;
  auto re = hf::Regex::compile(R"(\s+)", false);
  ASSERT_TRUE(re.ok());
  (*re)->find_all("a\xC2\x85\xC2\xA0 b", m);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], std::make_pair(size_t{1}, size_t{6}));
  m.clear();
  auto neg = hf::Regex::compile(R"(x(?!\S)|[^\s\p{L}]+)", false);
  ASSERT_TRUE(neg.ok());
  (*neg)->find_all("x\xC2\x85" "1x2", m);  // x before NEL counts; NEL is not in [^\s...]
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0], std::make_pair(size_t{0}, size_t{1}));
  EXPECT_EQ(m[1], std::make_pair(size_t{3}, size_t{4}));
  auto bad = hf::Regex::compile("(", false);
  EXPECT_FALSE(bad.ok());
  auto lit = hf::Regex::compile("a.b", true);
  ASSERT_TRUE(lit.ok());
  m.clear();
  (*lit)->find_all("axb a.b", m);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].first, 4u);
}

}  // namespace
}  // namespace tandem::testing
