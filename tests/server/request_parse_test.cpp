// Request parsing and validation: every parameter, its limits, and the 400s
// that name the field.
#include "server/request_parse.h"

#include <gtest/gtest.h>

namespace tandem::server {
namespace {

GenerationSpec ok_completion(const std::string& body) {
  auto r = parse_completion_request(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : GenerationSpec{};
}

ApiError bad_completion(const std::string& body) {
  auto r = parse_completion_request(body);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

ApiError bad_chat(const std::string& body) {
  auto r = parse_chat_request(body);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

TEST(RequestParse, CompletionDefaults) {
  GenerationSpec s = ok_completion(R"({"model":"m","prompt":"hi"})");
  EXPECT_EQ(s.model, "m");
  ASSERT_EQ(s.prompts.size(), 1u);
  EXPECT_FALSE(s.prompts[0].is_tokens);
  EXPECT_EQ(s.prompts[0].text, "hi");
  EXPECT_EQ(s.sampling.max_tokens, 16);
  EXPECT_FALSE(s.max_tokens_given);
  EXPECT_EQ(s.sampling.n, 1);
  EXPECT_EQ(s.sampling.logprobs, -1);
  EXPECT_FALSE(s.stream);
  EXPECT_TRUE(s.add_special_tokens);
}

TEST(RequestParse, AllPromptForms) {
  EXPECT_EQ(ok_completion(R"({"model":"m","prompt":["a","b","c"]})").prompts.size(), 3u);
  GenerationSpec t = ok_completion(R"({"model":"m","prompt":[1,2,3]})");
  ASSERT_EQ(t.prompts.size(), 1u);
  EXPECT_TRUE(t.prompts[0].is_tokens);
  EXPECT_EQ(t.prompts[0].token_ids, (std::vector<int32_t>{1, 2, 3}));
  GenerationSpec tt = ok_completion(R"({"model":"m","prompt":[[1],[2,3]]})");
  ASSERT_EQ(tt.prompts.size(), 2u);
  EXPECT_EQ(tt.prompts[1].token_ids, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(bad_completion(R"({"model":"m","prompt":[]})").param, "prompt");
  EXPECT_EQ(bad_completion(R"({"model":"m","prompt":["a",1]})").param, "prompt[1]");
  EXPECT_EQ(bad_completion(R"({"model":"m","prompt":[1,-2]})").param, "prompt[1]");
  EXPECT_EQ(bad_completion(R"({"model":"m","prompt":[[1],[]]})").param, "prompt[1]");
  EXPECT_EQ(bad_completion(R"({"model":"m","prompt":[1.5]})").param, "prompt[0]");
  EXPECT_EQ(bad_completion(R"({"model":"m","prompt":{"a":1}})").param, "prompt");
  EXPECT_EQ(bad_completion(R"({"model":"m"})").param, "prompt");
}

TEST(RequestParse, EveryParameter) {
  GenerationSpec s = ok_completion(R"({"model":"m","prompt":"x","max_tokens":7,"temperature":0.5,"top_p":0.9,
    "n":3,"stop":["a","bc"],"seed":42,"presence_penalty":1.5,"frequency_penalty":-1,"logprobs":4,"stream":true,
    "stream_options":{"include_usage":true},"user":"u1","top_k":40,"min_p":0.05,"repetition_penalty":1.1,
    "min_tokens":2,"ignore_eos":true,"stop_token_ids":[5,6],"skip_special_tokens":false,"best_of":3,
    "logit_bias":{},"echo":false,"suffix":""})");
  const SamplingParams& p = s.sampling;
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_TRUE(s.max_tokens_given);
  EXPECT_FLOAT_EQ(p.temperature, 0.5f);
  EXPECT_FLOAT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.n, 3);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"a", "bc"}));
  ASSERT_TRUE(p.seed.has_value());
  EXPECT_EQ(*p.seed, 42u);
  EXPECT_FLOAT_EQ(p.presence_penalty, 1.5f);
  EXPECT_FLOAT_EQ(p.frequency_penalty, -1.0f);
  EXPECT_EQ(p.logprobs, 4);
  EXPECT_TRUE(s.stream);
  EXPECT_TRUE(s.include_usage);
  EXPECT_EQ(s.user, "u1");
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.min_p, 0.05f);
  EXPECT_FLOAT_EQ(p.repetition_penalty, 1.1f);
  EXPECT_EQ(p.min_tokens, 2);
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.stop_token_ids, (std::vector<int32_t>{5, 6}));
  EXPECT_FALSE(p.skip_special_tokens);
}

TEST(RequestParse, LimitsNameTheFieldAndTheLimit) {
  struct Case {
    const char* body;
    const char* param;
    const char* needle;  // part of the message
  };
  const Case cases[] = {
      {R"({"model":"m","prompt":"x","max_tokens":0})", "max_tokens", "[1, 2147483647]"},
      {R"({"model":"m","prompt":"x","max_tokens":"5"})", "max_tokens", "must be an integer"},
      {R"({"model":"m","prompt":"x","max_tokens":2.5})", "max_tokens", "must be an integer"},
      {R"({"model":"m","prompt":"x","max_completion_tokens":-1})", "max_completion_tokens", "[1,"},
      {R"({"model":"m","prompt":"x","temperature":2.5})", "temperature", "[0, 2]"},
      {R"({"model":"m","prompt":"x","temperature":-0.1})", "temperature", "[0, 2]"},
      {R"({"model":"m","prompt":"x","top_p":0})", "top_p", "(0, 1]"},
      {R"({"model":"m","prompt":"x","top_p":1.01})", "top_p", "(0, 1]"},
      {R"({"model":"m","prompt":"x","n":0})", "n", "[1, 128]"},
      {R"({"model":"m","prompt":"x","n":129})", "n", "[1, 128]"},
      {R"({"model":"m","prompt":"x","presence_penalty":3})", "presence_penalty", "[-2, 2]"},
      {R"({"model":"m","prompt":"x","frequency_penalty":-2.5})", "frequency_penalty", "[-2, 2]"},
      {R"({"model":"m","prompt":"x","repetition_penalty":0})", "repetition_penalty", "(0, 10]"},
      {R"({"model":"m","prompt":"x","min_p":1.5})", "min_p", "[0, 1]"},
      {R"({"model":"m","prompt":"x","top_k":-2})", "top_k", "[-1,"},
      {R"({"model":"m","prompt":"x","logprobs":21})", "logprobs", "[0, 20]"},
      {R"({"model":"m","prompt":"x","logprobs":true})", "logprobs", "must be an integer"},
      {R"({"model":"m","prompt":"x","min_tokens":-1})", "min_tokens", "[0,"},
      {R"({"model":"m","prompt":"x","max_tokens":3,"min_tokens":4})", "min_tokens", "must be <="},
      {R"({"model":"m","prompt":"x","stop":5})", "stop", "a string or an array"},
      {R"({"model":"m","prompt":"x","stop":[""]})", "stop", "must not be empty"},
      {R"({"model":"m","prompt":"x","stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})", "stop", "limit is 16"},
      {R"({"model":"m","prompt":"x","stop_token_ids":[-1]})", "stop_token_ids[0]", ">= 0"},
      {R"({"model":"m","prompt":"x","seed":"1"})", "seed", "must be an integer"},
      {R"({"model":"m","prompt":"x","stream":"yes"})", "stream", "a boolean"},
      {R"({"model":"m","prompt":"x","stream_options":{"include_usage":true}})", "stream_options", "only allowed when 'stream' is true"},
      {R"({"model":"m","prompt":"x","stream":true,"stream_options":{"bogus":1}})", "stream_options.bogus", "unknown"},
      {R"({"model":"m","prompt":"x","ignore_eos":1})", "ignore_eos", "a boolean"},
      {R"({"model":5,"prompt":"x"})", "model", "must be a string"},
      {R"({"prompt":"x"})", "model", "required"},
      {R"({"model":"m","prompt":"x","bogus":1})", "bogus", "unknown parameter"},
  };
  for (const auto& c : cases) {
    ApiError e = bad_completion(c.body);
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.needle), std::string::npos) << c.body << " -> " << e.message;
  }
}

TEST(RequestParse, UnsupportedParametersAreRefusedByName) {
  const char* cases[][2] = {
      {R"({"model":"m","prompt":"x","suffix":"s"})", "suffix"},
      {R"({"model":"m","prompt":"x","echo":true})", "echo"},
      {R"({"model":"m","prompt":"x","best_of":3})", "best_of"},
      {R"({"model":"m","prompt":"x","logit_bias":{"5":1}})", "logit_bias"},
      {R"({"model":"m","prompt":"x","response_format":{"type":"json_object"}})", "response_format"},
      {R"({"model":"m","prompt":"x","guided_json":{}})", "guided_json"},
      {R"({"model":"m","prompt":"x","stream":true,"stream_options":{"continuous_usage_stats":true}})",
       "stream_options.continuous_usage_stats"},
  };
  for (const auto& c : cases) {
    ApiError e = bad_completion(c[0]);
    EXPECT_EQ(e.http_status, 400);
    EXPECT_EQ(e.param, c[1]) << c[0];
    EXPECT_NE(e.message.find("not supported"), std::string::npos) << e.message;
  }
  ApiError tools = bad_chat(R"({"model":"m","messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"f"}}]})");
  EXPECT_EQ(tools.param, "tools");
  EXPECT_NE(tools.message.find("tool calling"), std::string::npos);
  ApiError schema = bad_chat(R"({"model":"m","messages":[{"role":"user","content":"x"}],
    "response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{}}}})");
  EXPECT_EQ(schema.param, "response_format");
  // Null means "unset" and empty tools / tool_choice "none" ask for nothing.
  EXPECT_TRUE(parse_chat_request(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[],
    "tool_choice":"none","suffix":null,"response_format":{"type":"text"}})").ok());
}

TEST(RequestParse, ChatMessages) {
  auto r = parse_chat_request(R"({"model":"m","messages":[
    {"role":"system","content":"be brief"},
    {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
    {"role":"tool","content":"42","tool_call_id":"c1"}],
    "logprobs":true,"top_logprobs":3,"max_completion_tokens":9})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const GenerationSpec& s = r.value();
  ASSERT_EQ(s.messages.size(), 4u);
  EXPECT_EQ(s.messages[1]["content"], "ab");
  EXPECT_EQ(s.messages[2]["content"], "");
  EXPECT_TRUE(s.messages[2].contains("tool_calls"));
  EXPECT_EQ(s.messages[3]["tool_call_id"], "c1");
  EXPECT_EQ(s.sampling.logprobs, 3);
  EXPECT_EQ(s.sampling.max_tokens, 9);
  EXPECT_FALSE(s.add_special_tokens);

  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[]})").param, "messages");
  EXPECT_EQ(bad_chat(R"({"model":"m"})").param, "messages");
  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[{"role":"robot","content":"x"}]})").param, "messages[0].role");
  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[{"role":"user"}]})").param, "messages[0].content");
  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})").param,
            "messages[0].content[0].type");
  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[{"role":"user","content":5}]})").param, "messages[0].content");
  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[{"role":"user","content":"x","extra":1}]})").param,
            "messages[0].extra");
  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[{"role":"user","content":"x"}],"top_logprobs":2})").param,
            "top_logprobs");
  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":21})").param,
            "top_logprobs");
  EXPECT_EQ(bad_chat(R"({"model":"m","messages":[{"role":"user","content":"x"}],"prompt":"p"})").param, "prompt");
}

TEST(RequestParse, MalformedBodies) {
  for (const char* body : {"", "{", "[1,2]", "\"str\"", "null", "{\"model\":\"m\",}", "\xff\xfe"}) {
    auto r = parse_completion_request(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().http_status, 400);
  }
  std::string deep(100000, '[');
  auto r = parse_completion_request("{\"prompt\":" + deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("deeper than 64"), std::string::npos);
}

TEST(RequestParse, TokenizeAndDetokenize) {
  auto t = parse_tokenize_request(R"({"model":"m","prompt":"hi","add_special_tokens":false})");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t.value().add_special_tokens);
  auto c = parse_tokenize_request(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c.value().is_chat);
  EXPECT_TRUE(c.value().add_generation_prompt);
  EXPECT_FALSE(parse_tokenize_request(R"({"model":"m"})").ok());
  EXPECT_FALSE(parse_tokenize_request(R"({"model":"m","prompt":"a","messages":[]})").ok());
  auto d = parse_detokenize_request(R"({"model":"m","tokens":[1,2]})");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value().tokens.size(), 2u);
  auto bad = parse_detokenize_request(R"({"model":"m","tokens":[1,"x"]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().param, "tokens[1]");
}

TEST(ApiErrorTest, BodyShape) {
  ApiError e = bad_request("bad", "temperature");
  EXPECT_EQ(e.body(),
            R"({"error":{"code":null,"message":"bad","param":"temperature","type":"invalid_request_error"}})");
  ApiError q = api_error_from_status(resource_exhausted("full"));
  EXPECT_EQ(q.http_status, 429);
  EXPECT_EQ(q.retry_after_s, 1);
  EXPECT_EQ(api_error_from_status(unavailable("x")).http_status, 503);
  EXPECT_EQ(api_error_from_status(not_found("x")).http_status, 404);
}

}  // namespace
}  // namespace tandem::server
