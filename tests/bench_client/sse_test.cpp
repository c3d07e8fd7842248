#include "bench/sse.h"

#include <gtest/gtest.h>

namespace tandem::bench {
namespace {

TEST(SseParser, EventsSplitAcrossReads) {
  SseParser p;
  std::string stream = "data: {\"a\":1}\n\n: keep-alive\n\ndata:{\"b\":2}\r\n\r\nevent: x\ndata: [DONE]\n\n";
  std::vector<std::string> got;
  for (char c : stream) {  // worst case: one byte per read
    for (auto& e : p.feed(std::string_view(&c, 1))) got.push_back(e);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "[DONE]"}));
  EXPECT_TRUE(p.finish().empty());
}

TEST(SseParser, MultiLineDataAndUnterminatedEnd) {
  SseParser p;
  auto got = p.feed("data: line1\ndata: line2\n\ndata: tail");
  EXPECT_EQ(got, (std::vector<std::string>{"line1\nline2"}));
  EXPECT_EQ(p.finish(), (std::vector<std::string>{"tail"}));
}

TEST(StreamChunk, CompletionsAndChatContent) {
  auto c = parse_stream_chunk(R"({"choices":[{"text":"hi","index":0}]})", Endpoint::kCompletions);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->has_choices && c->has_content);
  c = parse_stream_chunk(R"({"choices":[{"text":"","finish_reason":"length"}]})", Endpoint::kCompletions);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->has_choices);
  EXPECT_FALSE(c->has_content);
  c = parse_stream_chunk(R"({"choices":[{"delta":{"role":"assistant","content":""}}]})", Endpoint::kChat);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_content);  // a role-only chunk is not the first token
  c = parse_stream_chunk(R"({"choices":[{"delta":{"content":"x"}}]})", Endpoint::kChat);
  EXPECT_TRUE(c.ok() && c->has_content);
  c = parse_stream_chunk(R"({"choices":[{"delta":{"reasoning_content":"think"}}]})", Endpoint::kChat);
  EXPECT_TRUE(c.ok() && c->has_content);
}

TEST(StreamChunk, UsageDoneAndErrors) {
  auto c = parse_stream_chunk(R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9}})",
                              Endpoint::kCompletions);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->has_choices);
  EXPECT_TRUE(c->has_usage);
  EXPECT_EQ(c->usage_prompt_tokens, 7);
  EXPECT_EQ(c->usage_completion_tokens, 9);
  c = parse_stream_chunk("[DONE]", Endpoint::kChat);
  EXPECT_TRUE(c.ok() && c->done);
  c = parse_stream_chunk(R"({"error":{"message":"out of memory"}})", Endpoint::kChat);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server_error, "out of memory");
  c = parse_stream_chunk("{\"choices\": [oops", Endpoint::kCompletions);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("malformed SSE"), std::string::npos);
  EXPECT_FALSE(parse_stream_chunk(R"({"choices":5})", Endpoint::kCompletions).ok());
  EXPECT_FALSE(parse_stream_chunk("[1,2]", Endpoint::kCompletions).ok());
}

}  // namespace
}  // namespace tandem::bench
