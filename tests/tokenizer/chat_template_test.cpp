// ChatTemplate API: errors at load and render time, variables, the default
// template, and reading tokenizer_config.json.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace tandem {
namespace {

using json = nlohmann::ordered_json;

std::string render(const std::string& source, const json& messages, const ChatRenderOptions& o = {}) {
  auto t = ChatTemplate::compile(source);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  if (!t.ok()) return "";
  auto r = t->render(messages, o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : "";
}

const json kMessages = json::parse(R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}])");

TEST(ChatTemplate, DefaultTemplateIsChatML) {
  ChatTemplate t = ChatTemplate::default_template();
  ChatRenderOptions o;
  o.add_generation_prompt = true;
  auto r = t.render(kMessages, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, StandardVariables) {
  ChatRenderOptions o;
  o.bos_token = "<s>";
  o.add_generation_prompt = true;
  o.extra = json::parse(R"({"enable_thinking": false, "messages": "ignored"})");
  EXPECT_EQ(render("{{ bos_token }}|{{ eos_token is defined }}|{{ tools is none }}|{{ documents is none }}|"
                   "{{ add_generation_prompt }}|{{ enable_thinking }}|{{ messages|length }}",
                   kMessages, o),
            "<s>|False|True|True|True|False|2");
  o.tools = json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {"b": 1, "a": 2}}}])");
  // Key order is the request's, not sorted.
  EXPECT_EQ(render("{{ tools[0].function|tojson }}", kMessages, o), R"({"name": "f", "parameters": {"b": 1, "a": 2}})");
}

TEST(ChatTemplate, ContentPartsArePassedAsIs) {
  json m = json::parse(R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])");
  EXPECT_EQ(render("{% for p in messages[0].content %}{{ p.text }}{% endfor %}|{{ messages[0].content is string }}", m),
            "ab|False");
}

TEST(ChatTemplate, RaiseExceptionIsAnInvalidArgumentWithItsMessage) {
  auto t = ChatTemplate::compile("{% if messages[0].role == 'user' %}{{ raise_exception('No users here') }}{% endif %}");
  ASSERT_TRUE(t.ok());
  auto r = t->render(kMessages, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), std::string(ChatTemplate::kRaisePrefix) + "No users here");
}

TEST(ChatTemplate, RenderErrorsAreStatuses) {
  auto t = ChatTemplate::compile("{{ messages[0].content + 1 }}");
  ASSERT_TRUE(t.ok());
  auto r = t->render(kMessages, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("can only concatenate str"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find(ChatTemplate::kRaisePrefix), std::string::npos);

  auto bad_messages = t->render(json::parse(R"({"role": "user"})"), {});
  EXPECT_EQ(bad_messages.status().code(), StatusCode::kInvalidArgument);
  ChatRenderOptions o;
  o.extra = json::array();
  EXPECT_FALSE(t->render(kMessages, o).ok());
}

TEST(ChatTemplate, UnsupportedConstructsFailAtLoadNamingThem) {
  struct Case {
    const char* source;
    const char* names;
  };
  const Case cases[] = {
      {"{{ x|truncate(5) }}", "unsupported filter 'truncate'"},
      {"{% if x %}{{ x|groupby('a') }}{% endif %}", "unsupported filter 'groupby'"},
      {"{{ x|round }}", "unsupported filter 'round'"},
      {"{% include 'other.jinja' %}", "unsupported tag '{% include %}'"},
      {"{% extends 'base' %}", "unsupported tag '{% extends %}'"},
      {"{% do messages.append(1) %}", "unsupported tag '{% do %}'"},
      {"{% for x in y recursive %}{% endfor %}", "unsupported 'recursive' for loop"},
      {"{{ f(*args) }}", "unsupported *args"},
  };
  for (const auto& c : cases) {
    auto t = ChatTemplate::compile(c.source);
    ASSERT_FALSE(t.ok()) << c.source;
    EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented) << c.source;
    EXPECT_NE(t.status().message().find(c.names), std::string::npos) << t.status().message();
  }
}

TEST(ChatTemplate, SyntaxErrorsNameTheLine) {
  const char* bad[] = {"{% if x %}no end", "{{ 1 + }}", "{% for %}{% endfor %}", "{{ 'open", "{# open", "{% endif %}",
                       "{{ x|nosuchfilter }}"};
  for (const char* source : bad) {
    auto t = ChatTemplate::compile(source);
    ASSERT_FALSE(t.ok()) << source;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << source;
    EXPECT_NE(t.status().message().find("line 1"), std::string::npos) << t.status().message();
  }
  auto t = ChatTemplate::compile("a\nb\n{% if %}");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("line 3"), std::string::npos) << t.status().message();
}

TEST(ChatTemplate, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  auto t = ChatTemplate::compile(deep);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("nests deeper"), std::string::npos) << t.status().message();
  std::string ifs;
  for (int i = 0; i < 3000; ++i) ifs += "{% if true %}";
  EXPECT_FALSE(ChatTemplate::compile(ifs).ok());
}

TEST(ChatTemplate, StrftimeNowUsesThePinnedClock) {
  std::tm tm{};
  tm.tm_year = 2025 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 2;
  tm.tm_hour = 12;
  tm.tm_isdst = -1;
  ChatRenderOptions o;
  o.now = std::mktime(&tm);
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}", kMessages, o), "02 Jan 2025");
}

TEST(ChatTemplate, RunawayTemplatesAreErrorsNotHangs) {
  const char* sources[] = {
      "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
      "{{ 'x' * 100000000000 }}",
      "{{ 2 ** 100000000000 }}",
      "{{ 9223372036854775807 + 1 }}",
      "{{ '{99999999999999999999999}'.format(1) }}",
  };
  for (const char* source : sources) {
    auto t = ChatTemplate::compile(source);
    ASSERT_TRUE(t.ok()) << source;
    auto r = t->render(kMessages, {});
    EXPECT_FALSE(r.ok()) << source;
  }
  EXPECT_EQ(render("{{ 1 ** 100000000000 }} {{ (-1) ** 100000000001 }} {{ 0 ** 5 }} {{ 3 ** 4 }}", kMessages),
            "1 -1 0 81");
}

TEST(ChatTemplate, MacroRecursionIsBounded) {
  auto t = ChatTemplate::compile("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
  ASSERT_TRUE(t.ok());
  auto r = t->render(kMessages, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("recursion"), std::string::npos);
}

class ChatTemplateConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("tandem_ct_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& text) {
    std::ofstream(dir_ / "tokenizer_config.json") << text;
    return dir_.string();
  }
  std::filesystem::path dir_;
};

TEST_F(ChatTemplateConfigTest, ReadsStringsAndAddedTokens) {
  std::string d = write(R"({"bos_token": {"__type": "AddedToken", "content": "<B>"}, "eos_token": "<E>",
                            "chat_template": "{{ bos_token }}"})");
  for (const std::string& path : {d, d + "/tokenizer_config.json", d + "/tokenizer.json"}) {
    auto c = load_chat_template_config(path);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    EXPECT_EQ(c->bos_token, "<B>");
    EXPECT_EQ(c->eos_token, "<E>");
    EXPECT_EQ(c->chat_template, "{{ bos_token }}");
  }
}

TEST_F(ChatTemplateConfigTest, NamedTemplateListUsesDefault) {
  auto c = load_chat_template_config(write(
      R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->chat_template, "D");
  EXPECT_FALSE(c->bos_token.has_value());
  auto none = load_chat_template_config(write(R"({"chat_template": [{"name": "rag", "template": "R"}]})"));
  EXPECT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("'default'"), std::string::npos);
}

TEST_F(ChatTemplateConfigTest, MissingTemplateIsNotAnError) {
  auto c = load_chat_template_config(write(R"({"eos_token": "</s>"})"));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->chat_template.has_value());
}

TEST_F(ChatTemplateConfigTest, BadFilesNameTheProblem) {
  EXPECT_EQ(load_chat_template_config((dir_ / "nowhere").string()).status().code(), StatusCode::kNotFound);
  auto bad_json = load_chat_template_config(write("{not json"));
  EXPECT_EQ(bad_json.status().code(), StatusCode::kInvalidArgument);
  auto bad_token = load_chat_template_config(write(R"({"bos_token": 5})"));
  EXPECT_NE(bad_token.status().message().find("'bos_token'"), std::string::npos);
  auto bad_template = load_chat_template_config(write(R"({"chat_template": 5})"));
  EXPECT_NE(bad_template.status().message().find("'chat_template'"), std::string::npos);
}

TEST(ChatTemplateRealConfigs, QwenLlamaDeepSeekFoldersRender) {
  const std::string base = TANDEM_SOURCE_DIR "/.cache/data/tokenizers/";
  if (!std::filesystem::exists(base + "qwen2_5/tokenizer_config.json")) GTEST_SKIP() << "data cache absent";
  for (const char* name : {"qwen2_5", "llama3", "deepseek_v3"}) {
    auto c = load_chat_template_config(base + name);
    ASSERT_TRUE(c.ok()) << name;
    ASSERT_TRUE(c->chat_template.has_value()) << name;
    auto t = ChatTemplate::compile(*c->chat_template);
    ASSERT_TRUE(t.ok()) << name << ": " << t.status().to_string();
    ChatRenderOptions o;
    o.bos_token = c->bos_token;
    o.eos_token = c->eos_token;
    o.add_generation_prompt = true;
    auto r = t->render(kMessages, o);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().to_string();
    EXPECT_NE(r->find("Hi"), std::string::npos);
  }
  auto mistral = load_chat_template_config(base + "mistral");
  ASSERT_TRUE(mistral.ok());
}

}  // namespace
}  // namespace tandem
