// Renders every template of fixtures/chat_templates/renders.json.gz (made by
// scripts/gpu/make_template_fixtures.py from transformers' own renderer) and
// compares byte for byte, including which cases must fail and with what
// raise_exception message.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/parser.h"

namespace tandem {
namespace {

// TANDEM_CHAT_FIXTURE overrides the path (e.g. a larger, uncommitted fixture).
const std::string kFixture = std::getenv("TANDEM_CHAT_FIXTURE") ? std::getenv("TANDEM_CHAT_FIXTURE")
                                                                 : TANDEM_SOURCE_DIR "/fixtures/chat_templates/renders.json.gz";

// Templates that do not render identically, each with the construct that stops
// it (docs/chat_templates.md lists the same). Every other template must match
// on every case.
const std::map<std::string, std::string> kKnownFailures = {
};

// The templates the issue names (by name or origin): these must match on every case.
const std::vector<std::string> kRequired = {
    "Qwen-Qwen2.5-7B-Instruct",          "tokenizer-qwen2_5",
    "meta-llama-Llama-3.1-8B-Instruct",  "meta-llama-Llama-3.2-3B-Instruct",
    "meta-llama-Llama-3.3-70B-Instruct", "tokenizer-llama3",
    "tokenizer-deepseek_v3",             "deepseek-ai-DeepSeek-V3.1",
    "mistralai-Mistral-Nemo-Instruct-2407", "Mistral-Small-3.2-24B-Instruct-2506",
    "mistralai/Mistral-7B-Instruct-v0.2",  // [INST] (llama.cpp test case)
    "deepseek-ai/deepseek-coder-33b-instruct",
};

// Which kRequired entry names this template ("" if none).
std::string required_name(const nlohmann::ordered_json& tmpl) {
  const std::string name = tmpl["name"].get<std::string>(), origin = tmpl.value("origin", "");
  for (const auto& r : kRequired) {
    if (name == r || origin.find(r) != std::string::npos) return r;
  }
  return "";
}

nlohmann::ordered_json load_fixture() {
  std::string cmd = "gzip -dc '" + kFixture + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
  if (pclose(p) != 0) return nullptr;
  return nlohmann::ordered_json::parse(text, nullptr, false);
}

std::time_t fixed_now(const std::string& iso) {
  std::tm tm{};
  std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
              &tm.tm_sec);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

std::optional<std::string> opt_string(const nlohmann::ordered_json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return std::nullopt;
  return j[key].get<std::string>();
}

// "" when the case matches, else what differs.
std::string check_case(const ChatTemplate& t, const nlohmann::ordered_json& tmpl, const nlohmann::ordered_json& c,
                       std::time_t now) {
  ChatRenderOptions o;
  o.add_generation_prompt = c.value("add_generation_prompt", false);
  o.bos_token = opt_string(tmpl, "bos_token");
  o.eos_token = opt_string(tmpl, "eos_token");
  if (c.contains("tools")) o.tools = c["tools"];
  if (c.contains("extra")) o.extra = c["extra"];
  o.now = now;
  auto got = t.render(c["messages"], o);
  if (c.contains("expected")) {
    if (!got.ok()) return "error instead of a render: " + got.status().message();
    const std::string want = c["expected"].get<std::string>();
    if (*got == want) return "";
    size_t i = 0;
    while (i < want.size() && i < got->size() && want[i] == (*got)[i]) ++i;
    return "differs at byte " + std::to_string(i) + ": want \"" + want.substr(i >= 40 ? i - 40 : 0, 120) +
           "\" got \"" + got->substr(i >= 40 ? i - 40 : 0, 120) + "\"";
  }
  if (got.ok()) return "rendered, but transformers fails: " + c.value("error", std::string());
  if (c.value("error_kind", "") == "raise_exception") {
    std::string want = std::string(ChatTemplate::kRaisePrefix) + c.value("error", std::string());
    if (got.status().message() != want) return "wrong exception: " + got.status().message();
  }
  return "";
}

TEST(ChatTemplateFixture, MatchesTransformers) {
  if (!std::filesystem::exists(kFixture)) {
    GTEST_SKIP() << "fixture absent: run python3 scripts/gpu/make_template_fixtures.py";
  }
  nlohmann::ordered_json fx = load_fixture();
  ASSERT_TRUE(fx.is_object()) << "cannot read " << kFixture;
  std::time_t now = fixed_now(fx["fixed_now"].get<std::string>());
  std::printf("oracle: %s\n", fx["oracle"].get<std::string>().c_str());
  int num_real = 0, num_real_ok = 0;
  std::set<std::string> required_seen;
  for (const auto& tmpl : fx["templates"]) {
    const std::string name = tmpl["name"].get<std::string>();
    bool real = tmpl.value("origin", "") == "llama-src/models/templates";
    num_real += real;
    std::string failure;
    auto t = ChatTemplate::compile(tmpl["source"].get<std::string>());
    if (!t.ok()) {
      failure = "compile: " + t.status().to_string();
    } else {
      for (const auto& c : tmpl["cases"]) {
        std::string why = check_case(*t, tmpl, c, now);
        if (!why.empty()) {
          failure = c["id"].get<std::string>() + ": " + why;
          break;
        }
      }
    }
    num_real_ok += real && failure.empty();
    auto known = kKnownFailures.find(name);
    if (!failure.empty()) {
      std::printf("FAIL %s: %s\n", name.c_str(), failure.c_str());
      EXPECT_TRUE(known != kKnownFailures.end()) << name << ": " << failure;
    } else {
      EXPECT_TRUE(known == kKnownFailures.end()) << name << " now passes: drop it from kKnownFailures";
    }
    if (std::string r = required_name(tmpl); !r.empty()) {
      required_seen.insert(r);
      EXPECT_TRUE(failure.empty()) << "required template " << name << ": " << failure;
    }
  }
  std::printf("real templates byte-identical on every case: %d of %d\n", num_real_ok, num_real);
  EXPECT_GE(num_real_ok, 50);
  EXPECT_EQ(required_seen.size(), kRequired.size()) << "a required template is missing from the fixture";
}

// llama.cpp's test-chat-template.cpp ships expected renders of its inline
// templates (read as data). Where its own polyfills (system merged into the
// first user turn, extra turns) make it differ from transformers, the case is
// skipped; every other one must match ours.
TEST(ChatTemplateFixture, LlamaCppExpectedOutputs) {
  if (!std::filesystem::exists(kFixture)) {
    GTEST_SKIP() << "fixture absent: run python3 scripts/gpu/make_template_fixtures.py";
  }
  nlohmann::ordered_json fx = load_fixture();
  ASSERT_TRUE(fx.is_object());
  std::time_t now = fixed_now(fx["fixed_now"].get<std::string>());
  int compared = 0, skipped = 0;
  for (const auto& tmpl : fx["templates"]) {
    if (!tmpl.contains("llama_cpp_expected")) continue;
    const auto& c = tmpl["cases"][0];
    ASSERT_EQ(c["id"], "llama_cpp_conversation");
    if (!c.contains("expected") || c["expected"] != tmpl["llama_cpp_expected"]) {
      ++skipped;
      continue;
    }
    auto t = ChatTemplate::compile(tmpl["source"].get<std::string>());
    ASSERT_TRUE(t.ok()) << tmpl["origin"] << ": " << t.status().to_string();
    nlohmann::ordered_json expected_only = c;
    expected_only["expected"] = tmpl["llama_cpp_expected"];
    EXPECT_EQ(check_case(*t, tmpl, expected_only, now), "") << tmpl["origin"];
    ++compared;
  }
  std::printf("llama.cpp expected outputs: %d compared, %d skipped (llama.cpp polyfills differ)\n", compared, skipped);
  EXPECT_GE(compared, 20);
}

// One semantic per snippet (scripts/gpu/template_snippets.py), rendered with
// the variables given; an expected error must be an error here too.
TEST(ChatTemplateFixture, SnippetsMatchTransformers) {
  if (!std::filesystem::exists(kFixture)) {
    GTEST_SKIP() << "fixture absent: run python3 scripts/gpu/make_template_fixtures.py";
  }
  nlohmann::ordered_json fx = load_fixture();
  ASSERT_TRUE(fx.is_object()) << "cannot read " << kFixture;
  ASSERT_TRUE(fx.contains("snippets"));
  std::time_t now = fixed_now(fx["fixed_now"].get<std::string>());
  int num = 0;
  for (const auto& sn : fx["snippets"]) {
    const std::string name = sn["name"].get<std::string>();
    SCOPED_TRACE(name);
    ++num;
    auto body = jinja::parse_template(sn["source"].get<std::string>());
    if (!body.ok()) {
      EXPECT_TRUE(sn.contains("error")) << "parse failed: " << body.status().to_string();
      continue;
    }
    std::vector<std::pair<std::string, jinja::Value>> vars;
    for (auto it = sn["variables"].begin(); it != sn["variables"].end(); ++it) {
      vars.emplace_back(it.key(), jinja::Value::from_json(it.value()));
    }
    jinja::InterpreterOptions io;
    io.strftime_now = [now](const std::string& f) {
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      return std::string(buf, std::strftime(buf, sizeof(buf), f.c_str(), &tm));
    };
    jinja::Interpreter interp(io);
    std::string got;
    std::string error;
    try {
      got = interp.render(*body, vars);
    } catch (const jinja::RenderError& e) {
      error = e.what();
      if (e.kind() == jinja::RenderError::Kind::kRaise && sn.value("error_kind", "") == "raise_exception") {
        EXPECT_EQ(error, sn["error"].get<std::string>());
      }
    }
    if (sn.contains("expected")) {
      EXPECT_EQ(error, "");
      EXPECT_EQ(got, sn["expected"].get<std::string>());
    } else {
      EXPECT_NE(error, "") << "rendered \"" << got << "\" but transformers fails: " << sn.value("error", "");
    }
  }
  EXPECT_GT(num, 100);
}

}  // namespace
}  // namespace tandem
