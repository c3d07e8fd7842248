// IncrementalDetokenizer: only complete UTF-8 comes out, and the pieces add up
// to decode(all ids); plus the stop-string scan the engine uses.
#include <algorithm>
#include <fstream>
#include <span>
#include <sstream>

#include "test_util.h"
#include "tokenizer/unicode.h"

namespace tandem::testing {
namespace {

std::vector<std::string> stream_texts() {
  std::vector<std::string> texts = {
      "Hello world! The café costs 12.50 €.",
      "  leading spaces and\ttabs\r\nCRLF",
      "🦙 llamas 👨‍👩‍👧‍👦 families 🇺🇸 flags",
      "中文文本和日本語のテキスト、한국어",
      "Ꙋ🦙 rare characters: 𝔸𝕏 and ∑∫√",
      "special <|im_start|>user\nhi<|im_end|> <s>[INST] x [/INST]</s> <｜User｜>",
      "e\xCC\x81 combining and \xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D",
      "",
  };
  std::ifstream f(std::string(TANDEM_SOURCE_DIR) + "/bench/data/code.txt");
  std::stringstream ss;
  ss << f.rdbuf();
  texts.push_back(ss.str().substr(0, 3000));
  return texts;
}

class Streaming : public ::testing::TestWithParam<const char*> {};

TEST_P(Streaming, PiecesAreCompleteAndAddUpToDecode) {
  const Tokenizer* tok = get_tokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  for (bool skip : {false, true}) {
    for (const auto& text : stream_texts()) {
      const auto ids = tok->encode(text, true);
      IncrementalDetokenizer detok(*tok, skip);
      std::string all;
      for (int32_t id : ids) {
        const std::string piece = detok.push(id);
        EXPECT_TRUE(unicode::is_valid_utf8(piece));
        EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos)
            << GetParam() << ": a partial character leaked for text " << text;
        all += piece;
      }
      EXPECT_EQ(all, detok.text());
      all += detok.finish();
      EXPECT_EQ(all, detok.text());
      EXPECT_EQ(all, tok->decode(ids, skip)) << GetParam() << " skip=" << skip << " text " << text;
    }
  }
}

// A character split over several tokens comes out only when complete.
TEST_P(Streaming, HoldsBackPartialCharacters) {
  const Tokenizer* tok = get_tokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode("🦙", false);
  ASSERT_GE(ids.size(), 1u);
  IncrementalDetokenizer detok(*tok, false);
  std::string all;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string piece = detok.push(ids[i]);
    if (i + 1 < ids.size()) EXPECT_EQ(piece, "") << GetParam() << " token " << i;
    all += piece;
  }
  all += detok.finish();
  EXPECT_EQ(all, tok->decode(ids, false));
  EXPECT_NE(all.find("🦙"), std::string::npos);
}

TEST_P(Streaming, IncompleteCharacterAtEndBecomesReplacement) {
  const Tokenizer* tok = get_tokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode("a\U0002070E", false);  // a rare CJK extension B character
  std::vector<int32_t> cut(ids.begin(), ids.end() - 1);
  ASSERT_NE(tok->decode(cut, false).find("\xEF\xBF\xBD"), std::string::npos)
      << GetParam() << ": expected U+2070E to take several tokens";
  IncrementalDetokenizer detok(*tok, false);
  std::string all;
  for (int32_t id : cut) all += detok.push(id);
  all += detok.finish();
  EXPECT_EQ(all, tok->decode(cut, false));
}

// With the prompt's last ids as context, the pieces add up to the output's
// text after the prompt: decode(prompt + output) minus decode(prompt).
TEST_P(Streaming, ContinuesThePrompt) {
  const Tokenizer* tok = get_tokenizer(GetParam());
  ASSERT_NE(tok, nullptr);
  for (bool skip : {false, true}) {
    for (const auto& text : stream_texts()) {
      const auto ids = tok->encode(text, true);
      if (ids.size() < 8) continue;
      const size_t cut = ids.size() / 2;
      const std::span<const int32_t> all(ids);
      const std::span<const int32_t> context = all.first(cut).last(std::min<size_t>(cut, 5));
      const std::string head = tok->decode(context, skip);
      if (head.find("\xEF\xBF\xBD") != std::string::npos) continue;  // context is ignored then
      IncrementalDetokenizer detok(*tok, skip, context);
      std::string out;
      for (int32_t id : all.subspan(cut)) out += detok.push(id);
      out += detok.finish();
      std::vector<int32_t> both(context.begin(), context.end());
      both.insert(both.end(), ids.begin() + cut, ids.end());
      const std::string full = tok->decode(both, skip);
      ASSERT_EQ(full.compare(0, head.size(), head), 0);
      EXPECT_EQ(out, full.substr(head.size())) << GetParam() << " skip=" << skip << " text " << text;
    }
  }
}

// SentencePiece: "▁there" after a prompt comes out as " there"; alone, the
// decoder strips the space.
TEST(StreamingContext, FirstTokenKeepsItsSpace) {
  const Tokenizer* tok = get_tokenizer("mistral");
  ASSERT_NE(tok, nullptr);
  const auto prompt = tok->encode("Once upon a time", true);
  const std::optional<int32_t> there = tok->token_to_id("\u2581there");
  ASSERT_TRUE(there.has_value());
  IncrementalDetokenizer plain(*tok, true);
  std::string text = plain.push(*there);  // push before finish: + would not order them
  EXPECT_EQ(text + plain.finish(), "there");
  IncrementalDetokenizer after(*tok, true, prompt);
  text = after.push(*there);
  EXPECT_EQ(text + after.finish(), " there");
}

INSTANTIATE_TEST_SUITE_P(AllTokenizers, Streaming,
                         ::testing::Values("qwen2_5", "llama3", "mistral", "deepseek_v3", "llama2-spm"));

TEST(StopStrings, FindsEarliestMatch) {
  const std::vector<std::string> stops = {"world", "lo w", "xyz"};
  const auto r = scan_stop_strings("hello world", stops);
  ASSERT_TRUE(r.match_pos.has_value());
  EXPECT_EQ(*r.match_pos, 3u);  // "lo w" starts before "world"
  EXPECT_EQ(r.match_index, 1u);
  EXPECT_EQ(r.send_up_to, 3u);
}

TEST(StopStrings, HoldsBackPossiblePrefix) {
  const std::vector<std::string> stops = {"</answer>", "STOP"};
  auto r = scan_stop_strings("the result</ans", stops);
  EXPECT_FALSE(r.match_pos);
  EXPECT_EQ(r.send_up_to, std::string("the result").size());
  r = scan_stop_strings("the result is ST", stops);
  EXPECT_EQ(r.send_up_to, std::string("the result is ").size());
  r = scan_stop_strings("nothing here", stops);
  EXPECT_EQ(r.send_up_to, 12u);
  r = scan_stop_strings("ends with <", stops);
  EXPECT_EQ(r.send_up_to, 10u);
}

TEST(StopStrings, IncrementalUseNeverSendsPartOfAStop) {
  // Simulates the engine: text grows piece by piece; sent text never contains
  // any prefix of the stop string that later completes.
  const std::vector<std::string> stops = {"<|end|>", "\n\nUser:"};
  const std::vector<std::string> pieces = {"Sure", ", here", " it is.\n", "\nUs", "er", ": more"};
  std::string text, sent;
  size_t send_from = 0;
  std::optional<size_t> stop_at;
  for (const auto& p : pieces) {
    text += p;
    const auto r = scan_stop_strings(text, stops, send_from);
    sent += text.substr(send_from, r.send_up_to - send_from);
    send_from = r.send_up_to;
    if (r.match_pos) {
      stop_at = r.match_pos;
      break;
    }
  }
  ASSERT_TRUE(stop_at.has_value());
  EXPECT_EQ(sent, "Sure, here it is.");
  EXPECT_EQ(*stop_at, sent.size());
}

TEST(StopStrings, EmptyStopsIgnored) {
  const std::vector<std::string> stops = {""};
  const auto r = scan_stop_strings("abc", stops);
  EXPECT_FALSE(r.match_pos);
  EXPECT_EQ(r.send_up_to, 3u);
}

}  // namespace
}  // namespace tandem::testing
