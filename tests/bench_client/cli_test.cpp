// `tandem bench` as a user runs it: the binary against the fake server, its exit
// codes, and one-line errors for bad flags.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "fake_openai_server.h"

namespace tandem::bench {
namespace {

struct CliRun {
  int code;
  std::string output;  // stdout and stderr
};

CliRun run_cli(const std::string& args) {
  std::string cmd = std::string("timeout 60 ") + TANDEM_BINARY + " bench " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(BenchCli, RunsAndWritesJson) {
  testing::FakeOpenAiServer server({/*ttft_ms=*/10, /*itl_ms=*/2});
  std::string json = ::testing::TempDir() + "cli.json";
  CliRun r = run_cli("--base-url " + server.base_url() + " --model ok --model ok-close --mix 1,1 --num-prompts 6 " +
              "--input-len 8 --output-len 4 --request-rate 100 --slo ttft=1s,tpot=500ms --api-key secret " +
              "--json " + json);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("== overall: 6 completed, 0 failed"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("TTFT"), std::string::npos);
  EXPECT_NE(r.output.find("progress: 6/6 done"), std::string::npos) << r.output;  // not a TTY: plain lines
  std::ifstream in(json);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["completed"], 6);
  EXPECT_EQ(j["args"]["request_rate"], 100.0);
  EXPECT_EQ(j["args"]["slo"]["ttft_ms"], 1000.0);
  std::string argv = j["args"]["argv"].dump();
  EXPECT_EQ(argv.find("secret"), std::string::npos) << "the API key must not be written";
  EXPECT_NE(argv.find("--mix"), std::string::npos);
}

TEST(BenchCli, NoCompletedRequestExitsThree) {
  testing::FakeOpenAiServer server({/*ttft_ms=*/1, /*itl_ms=*/1});
  CliRun r = run_cli("--base-url " + server.base_url() + " --model err500 --num-prompts 2 --input-len 4 --output-len 2");
  EXPECT_EQ(r.code, 3) << r.output;
  EXPECT_NE(r.output.find("http_status=2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no request completed"), std::string::npos);
}

TEST(BenchCli, BadFlagsGiveOneLineErrors) {
  struct Case {
    std::string args, needle;
  };
  for (const auto& c : std::vector<Case>{
           {"--model m --request-rate fast", "--request-rate"},
           {"--model m --slo ttft", "--slo"},
           {"--model m --mix 1,2", "--mix has 2 weights for 1 models"},
           {"--model m --base-url https://x", "https is not supported"},
           {"--model m --endpoint edit", "--endpoint"},
           {"--model m --dataset /nonexistent.jsonl", "/nonexistent.jsonl: cannot open"},
           {"--model m --sweep-rates 1,0", "--sweep-rates"},
           {"--num-prompts 3", "--model"},
       }) {
    CliRun r = run_cli(c.args);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << c.args << "\n" << r.output;
  }
}

}  // namespace
}  // namespace tandem::bench
