// The bench client against a fake OpenAI server on loopback: measured timings
// match the injected delays, and every kind of failure is counted, never fatal.
#include <cmath>
#include <cstdio>
#include <fstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "bench/bench.h"
#include "bench/http.h"
#include "bench/prompts.h"
#include "bench/runner.h"
#include "fake_openai_server.h"
#include "tokenizer/tokenizer.h"

namespace tandem::bench {
namespace {

using testing::FakeOpenAiServer;

BenchOutput quiet_io() {
  BenchOutput io;
  io.out = stdout;
  io.status = stderr;
  return io;
}

BenchOptions base_options(const FakeOpenAiServer& server) {
  BenchOptions o;
  o.base_url = server.base_url();
  o.models = {"ok"};
  o.num_prompts = 6;
  o.input_len = 16;
  o.output_len = 8;
  o.timeout_s = 10;
  o.progress = false;
  return o;
}

TEST(BenchClient, TimingsMatchInjectedDelays) {
  FakeOpenAiServer server({/*ttft_ms=*/80, /*itl_ms=*/20});
  BenchOptions o = base_options(server);
  auto reports = run_bench(o, quiet_io());
  ASSERT_TRUE(reports.ok()) << reports.status().message();
  const Metrics& m = (*reports)[0].overall;
  EXPECT_EQ(m.completed, 6);
  EXPECT_EQ(m.failed, 0);
  EXPECT_EQ(m.total_output_tokens, 6 * 8);  // from usage
  EXPECT_EQ(m.total_input_tokens, 6 * 16);  // usage.prompt_tokens: the synthetic prompts are exact
  // Sleeps never end early; a loaded CI box may add tens of ms.
  EXPECT_GE(m.ttft.p50, 79);
  EXPECT_LT(m.ttft.p99, 80 + 60);
  EXPECT_GE(m.tpot.mean, 19);
  EXPECT_LT(m.tpot.mean, 20 + 12);
  EXPECT_GE(m.itl.p50, 19);
  EXPECT_LT(m.itl.p50, 20 + 12);
  EXPECT_EQ(m.itl.count, 6 * 7);
  EXPECT_GE(m.e2e.p50, 80 + 7 * 20 - 1);
  // Every request streamed, with ignore_eos and usage asked for.
  auto bodies = server.requests();
  ASSERT_EQ(bodies.size(), 6u);
  for (const auto& b : bodies) {
    EXPECT_EQ(b["stream"], true);
    EXPECT_EQ(b["ignore_eos"], true);
    EXPECT_EQ(b["stream_options"]["include_usage"], true);
    EXPECT_EQ(b["max_tokens"], 8);
    EXPECT_EQ(FakeOpenAiServer::count_tokens(b["prompt"].get<std::string>()), 16);
  }
  EXPECT_NE(bodies[0]["prompt"], bodies[1]["prompt"]);  // no shared prefix for a cache to find
}

TEST(BenchClient, ChatEndpointSkipsTheRoleChunk) {
  FakeOpenAiServer server({/*ttft_ms=*/50, /*itl_ms=*/10});
  BenchOptions o = base_options(server);
  o.endpoint = Endpoint::kChat;
  o.num_prompts = 3;
  auto reports = run_bench(o, quiet_io());
  ASSERT_TRUE(reports.ok()) << reports.status().message();
  const Metrics& m = (*reports)[0].overall;
  EXPECT_EQ(m.completed, 3);
  EXPECT_GE(m.ttft.p50, 49);
  EXPECT_EQ(m.itl.count, 3 * 7);
  EXPECT_TRUE(server.requests()[0].contains("messages"));
}

TEST(BenchClient, EveryFailureKindIsCounted) {
  FakeOpenAiServer server({/*ttft_ms=*/20, /*itl_ms=*/5});
  BenchOptions o = base_options(server);
  o.models = {"ok", "err500", "malformed", "hang", "midstream", "cut", "ok-close"};
  o.num_prompts = 14;  // two each
  o.timeout_s = 0.5;
  auto t0 = std::chrono::steady_clock::now();
  auto reports = run_bench(o, quiet_io());
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(reports.ok()) << reports.status().message();
  const RunReport& r = (*reports)[0];
  EXPECT_EQ(r.overall.completed, 4);
  EXPECT_EQ(r.overall.failed, 10);
  auto expect_model = [&](int i, int completed, int failed) {
    EXPECT_EQ(r.per_model[i].completed, completed) << o.models[i];
    EXPECT_EQ(r.per_model[i].failed, failed) << o.models[i];
  };
  expect_model(0, 2, 0);
  for (int i = 1; i <= 5; ++i) expect_model(i, 0, 2);
  expect_model(6, 2, 0);
  EXPECT_EQ(r.per_model[6].num_without_usage, 2);  // ok-close sends no usage: chunks counted
  EXPECT_EQ(r.per_model[6].total_output_tokens, 2 * 8);
  auto counts = r.errors.counts;
  EXPECT_EQ(counts["http_status"], 2);
  EXPECT_EQ(counts["malformed_sse"], 2);
  EXPECT_EQ(counts["timeout"], 2);
  EXPECT_EQ(counts["server_error"], 2);
  EXPECT_EQ(counts["transport"], 2);
  bool saw_500 = false;
  for (const auto& msg : r.errors.first_messages) saw_500 |= msg.find("HTTP 500: ") == 0;
  EXPECT_TRUE(saw_500);
  EXPECT_LT(wall, 5.0);  // the hang ends at --timeout
}

TEST(BenchClient, RefusedConnectionsAreCounted) {
  int port;
  {  // a port that nothing listens on any more
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  BenchOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.models = {"ok"};
  o.num_prompts = 4;
  o.progress = false;
  o.dataset = ::testing::TempDir() + "refused.jsonl";
  std::ofstream(o.dataset) << "{\"prompt\": \"hello\", \"max_tokens\": 2}\n";
  auto reports = run_bench(o, quiet_io());
  ASSERT_TRUE(reports.ok()) << reports.status().message();
  EXPECT_EQ((*reports)[0].overall.completed, 0);
  EXPECT_EQ((*reports)[0].overall.failed, 4);
  EXPECT_EQ((*reports)[0].errors.counts.at("connect"), 4);
  EXPECT_NE((*reports)[0].errors.first_messages.at(0).find("connect"), std::string::npos);

  // Synthetic prompts need /tokenize: that fails up front with one clear error.
  o.dataset.clear();
  auto s = run_bench(o, quiet_io());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/tokenize"), std::string::npos) << s.status().message();

  // --tokenize-url counts tokens on another server (one serving the same model).
  FakeOpenAiServer tokenizer_server({1, 1});
  o.tokenize_url = tokenizer_server.base_url();
  s = run_bench(o, quiet_io());
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ((*s)[0].errors.counts.at("connect"), 4);
  EXPECT_GE(tokenizer_server.num_tokenize_calls(), 4);
  EXPECT_TRUE(tokenizer_server.requests().empty());
}

TEST(BenchClient, LocalTokenizerNeedsNoTokenizeEndpoint) {
  std::string path = std::string(TANDEM_SOURCE_DIR) + "/.cache/data/tokenizers/qwen2_5";
  if (!std::ifstream(path + "/tokenizer.json")) GTEST_SKIP() << "no tokenizer data (scripts/fetch_data.sh)";
  FakeOpenAiServer server({/*ttft_ms=*/5, /*itl_ms=*/1});
  BenchOptions o = base_options(server);
  o.num_prompts = 3;
  o.input_len = 40;
  o.tokenizers = {path};
  auto reports = run_bench(o, quiet_io());
  ASSERT_TRUE(reports.ok()) << reports.status().message();
  EXPECT_EQ((*reports)[0].overall.completed, 3);
  EXPECT_EQ((*reports)[0].num_prompts_off_target, 0);
  EXPECT_EQ(server.num_tokenize_calls(), 0);
  auto tok = Tokenizer::load(path);
  ASSERT_TRUE(tok.ok());
  for (const auto& b : server.requests())
    EXPECT_EQ((*tok)->encode(b["prompt"].get<std::string>(), true).size(), 40u);
}

TEST(BenchClient, MaxConcurrencyIsHonoured) {
  FakeOpenAiServer server({/*ttft_ms=*/30, /*itl_ms=*/5});
  BenchOptions o = base_options(server);
  o.num_prompts = 8;
  o.max_concurrency = 2;
  auto reports = run_bench(o, quiet_io());
  ASSERT_TRUE(reports.ok());
  EXPECT_EQ((*reports)[0].overall.completed, 8);
  EXPECT_EQ(server.max_streams_at_once(), 2);
}

TEST(BenchClient, RequestsStartOnTheirArrivalSchedule) {
  FakeOpenAiServer server({/*ttft_ms=*/5, /*itl_ms=*/1});
  ServerAddress address = *parse_base_url(server.base_url());
  auto target = resolve_target(address, "");
  ASSERT_TRUE(target.ok());
  BenchOptions o = base_options(server);
  std::vector<PlannedRequest> requests(10);
  for (auto& r : requests) r.body = request_body(o, "ok", "a b c", 2);
  auto arrivals = arrival_times(10, 40.0, 1.0, 5);
  RunConfig config;
  config.target = "/v1/completions";
  auto outcome = run_requests(*target, requests, arrivals, config, nullptr);
  ASSERT_EQ(outcome.results.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_TRUE(outcome.results[i].success) << outcome.results[i].error;
    EXPECT_GE(outcome.results[i].start_s, arrivals[i] - 1e-3);
    EXPECT_LT(outcome.results[i].start_s, arrivals[i] + 0.05);
  }
  EXPECT_GE(outcome.duration_s, arrivals.back());
}

TEST(BenchClient, JsonSchemaAndSweepChart) {
  FakeOpenAiServer server({/*ttft_ms=*/10, /*itl_ms=*/2});
  BenchOptions o = base_options(server);
  o.models = {"ok", "ok-close"};
  o.mix = {3, 1};
  o.num_prompts = 8;
  o.slo.ttft_s = 5.0;
  o.json_path = ::testing::TempDir() + "bench.json";
  o.argv = {"tandem bench", "--model", "ok"};
  auto reports = run_bench(o, quiet_io());
  ASSERT_TRUE(reports.ok()) << reports.status().message();
  std::ifstream in(o.json_path);
  auto j = nlohmann::json::parse(in);
  for (const char* k : {"completed", "failed", "duration_s", "request_throughput", "output_throughput",
                        "total_token_throughput", "goodput"})
    EXPECT_TRUE(j[k].is_number()) << k;
  EXPECT_EQ(j["completed"], 8);
  EXPECT_EQ(j["failed"], 0);
  for (const char* k : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"})
    for (const char* p : {"mean", "p50", "p90", "p99"}) EXPECT_TRUE(j[k][p].is_number()) << k << "." << p;
  ASSERT_TRUE(j["per_model"].is_object());
  EXPECT_EQ(j["per_model"]["ok"]["completed"], 6);
  EXPECT_EQ(j["per_model"]["ok-close"]["completed"], 2);
  EXPECT_TRUE(j["per_model"]["ok"]["ttft_ms"]["p99"].is_number());
  EXPECT_EQ(j["args"]["models"], nlohmann::json({"ok", "ok-close"}));
  EXPECT_EQ(j["args"]["request_rate"], "inf");
  EXPECT_EQ(j["args"]["argv"][1], "--model");
  EXPECT_DOUBLE_EQ(j["goodput"].get<double>(), j["request_throughput"].get<double>());  // all within 5 s

  o.sweep_rates = {200.0, std::numeric_limits<double>::infinity()};
  o.chart_path = ::testing::TempDir() + "sweep.svg";
  reports = run_bench(o, quiet_io());
  ASSERT_TRUE(reports.ok());
  ASSERT_EQ(reports->size(), 2u);
  std::ifstream sin(o.json_path);
  auto sweep = nlohmann::json::parse(sin);
  ASSERT_EQ(sweep["sweep"].size(), 2u);
  EXPECT_EQ(sweep["sweep"][0]["request_rate"], 200.0);
  EXPECT_EQ(sweep["sweep"][1]["request_rate"], "inf");
  EXPECT_TRUE(sweep["args"].is_object());
  std::ifstream svg_in(o.chart_path);
  std::string svg((std::istreambuf_iterator<char>(svg_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find(">inf</text>"), std::string::npos);
  EXPECT_NE(svg.find("Time to first token"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);

  o.json_path = "/nonexistent-dir/x.json";
  auto bad = run_bench(o, quiet_io());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/nonexistent-dir/x.json"), std::string::npos);
}

}  // namespace
}  // namespace tandem::bench
