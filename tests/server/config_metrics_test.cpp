// TOML config + CLI layering, size parsing, the metrics exposition, SSE framing.
#include <gtest/gtest.h>

#include "server/generation_job.h"
#include "server/metrics.h"
#include "server/server_config.h"

namespace tandem::server {
namespace {

// Overlapping steps by default on CUDA (the fairness benchmark in docs/memory.md),
// one at a time on CPU, an explicit count kept, a bad one refused by name.
TEST(ServerConfigTest, ConcurrentStepsDefaultFollowsTheDevice) {
  EXPECT_EQ(*resolve_concurrent_steps(0, "cuda"), 2);
  EXPECT_EQ(*resolve_concurrent_steps(0, "cpu"), 1);
  EXPECT_EQ(*resolve_concurrent_steps(1, "cuda"), 1);
  EXPECT_EQ(*resolve_concurrent_steps(2, "cpu"), 2);
  const auto bad = resolve_concurrent_steps(3, "cuda");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--concurrent-steps"), std::string::npos);
}

TEST(ServerConfigTest, ParseSize) {
  EXPECT_EQ(*parse_size("96GiB"), 96ull << 30);
  EXPECT_EQ(*parse_size("512 MiB"), 512ull << 20);
  EXPECT_EQ(*parse_size("1.5GB"), 1500000000ull);
  EXPECT_EQ(*parse_size("1024"), 1024ull);
  EXPECT_FALSE(parse_size("lots").ok());
  EXPECT_FALSE(parse_size("5XB").ok());
}

TEST(ServerConfigTest, FileThenCliLayering) {
  ServerConfig c;
  ASSERT_TRUE(parse_config_toml(R"(
[server]
host = "0.0.0.0"
port = 9000
request_timeout_s = 30
max_body_bytes = "1MiB"
[engine]
max_model_len = 4096
max_num_seqs = 64
gpu_budget = "80GiB"
[models.coder]
path = "/m/coder"
max_model_len = 16384
[models.chat]
path = "/m/chat"
load_format = "dummy"
)", "t.toml", &c).ok());
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.port, 9000);
  EXPECT_EQ(c.max_body_bytes, 1u << 20);
  ASSERT_TRUE(add_model_flag("chat=/other/chat", &c).ok());
  ASSERT_TRUE(add_model_flag("extra=/m/extra", &c).ok());
  c.engine_cli.max_num_seqs = 8;
  ASSERT_TRUE(finalize_config(&c, "envkey").ok());
  ASSERT_EQ(c.models.size(), 3u);
  EXPECT_EQ(c.models[0].name, "chat");  // toml++ tables iterate in key order
  EXPECT_EQ(c.models[0].path, "/other/chat");
  EXPECT_EQ(c.models[0].engine.max_model_len, 4096);
  EXPECT_EQ(c.models[1].name, "coder");
  EXPECT_EQ(c.models[1].engine.max_model_len, 16384);
  EXPECT_EQ(c.models[0].engine.load_format, "dummy");  // per-model key
  EXPECT_EQ(c.models[1].engine.load_format, "auto");
  for (const auto& m : c.models) {
    EXPECT_EQ(m.engine.max_num_seqs, 8);  // the CLI wins over file and per-model
    EXPECT_EQ(m.engine.gpu_budget_bytes, 80ull << 30);
  }
  EXPECT_EQ(c.api_key, "envkey");
}

TEST(ServerConfigTest, OneBudgetForAllModelsAndWeights) {
  ServerConfig c;
  ASSERT_TRUE(parse_config_toml("[engine]\ngpu_budget = \"8GiB\"\n[models.a]\npath = \"/a\"\nweight = 2.5\n"
                                "[models.b]\npath = \"/b\"\n",
                                "t.toml", &c).ok());
  ASSERT_TRUE(finalize_config(&c, nullptr).ok());
  EXPECT_EQ(c.models[0].engine.weight, 2.5);
  EXPECT_EQ(c.models[1].engine.weight, 1.0);
  ServerConfig per_model;
  ASSERT_TRUE(parse_config_toml("[models.a]\npath = \"/a\"\ngpu_budget = \"8GiB\"\n[models.b]\npath = \"/b\"\n",
                                "t.toml", &per_model).ok());
  Status s = finalize_config(&per_model, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("one budget for all models"), std::string::npos) << s.message();
}

TEST(ServerConfigTest, SharedStepTokensLayersAndNamesTheFlag) {
  ServerConfig c;
  ASSERT_TRUE(parse_config_toml("[engine]\nshared_step_tokens = 256\n[models.a]\npath = \"/a\"\n"
                                "[models.b]\npath = \"/b\"\nshared_step_tokens = 0\n[models.c]\npath = \"/c\"\n",
                                "t.toml", &c).ok());
  ASSERT_TRUE(finalize_config(&c, nullptr).ok());
  EXPECT_EQ(c.models[0].engine.shared_step_tokens, 256);  // [engine]
  EXPECT_EQ(c.models[1].engine.shared_step_tokens, 0);    // per model: off
  ServerConfig d;
  ASSERT_TRUE(add_model_flag("a=/a", &d).ok());
  ASSERT_TRUE(finalize_config(&d, nullptr).ok());
  EXPECT_EQ(d.models[0].engine.shared_step_tokens, memory::kDefaultSharedStepTokens);
  c.engine_cli.shared_step_tokens = 128;  // the flag wins over file and per-model
  ASSERT_TRUE(finalize_config(&c, nullptr).ok());
  for (const auto& m : c.models) EXPECT_EQ(m.engine.shared_step_tokens, 128) << m.name;
  for (int bad : {-1, (1 << 24) + 1}) {
    c.engine_cli.shared_step_tokens = bad;
    Status s = finalize_config(&c, nullptr);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.message(), "--shared-step-tokens: must be in [0, 16777216] (0: no cap), got " + std::to_string(bad));
  }
}

TEST(ServerConfigTest, ErrorsNameFileAndKey) {
  struct Case {
    const char* toml;
    const char* needle;
  };
  const Case cases[] = {
      {"[server]\nport = 70000\n", "server.port: must be in [0, 65535]"},
      {"[server]\nbogus = 1\n", "unknown key 'bogus'"},
      {"[engine]\nmax_model_len = \"x\"\n", "engine.max_model_len: must be an integer"},
      {"[engine]\ngpu_budget = \"9ZB\"\n", "engine.gpu_budget"},
      {"[models.a]\nmax_model_len = 5\n", "models.a.path: required"},
      {"[models.a]\npath = \"/x\"\nspeed = 3\n", "models.a: unknown key 'speed'"},
      {"[weird]\n", "unknown table 'weird'"},
      {"[engine]\nload_format = \"npz\"\n", "engine.load_format: must be \"auto\" or \"dummy\""},
      {"[models.a]\npath = \"/x\"\nweight = 0\n", "models.a.weight: must be a number in (0, 1e6]"},
      {"[engine]\nshared_step_tokens = -1\n", "engine.shared_step_tokens: must be in [0, 16777216], got -1"},
      {"[server\n", "t.toml:1"},
  };
  for (const auto& c : cases) {
    ServerConfig cfg;
    Status s = parse_config_toml(c.toml, "t.toml", &cfg);
    ASSERT_FALSE(s.ok()) << c.toml;
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << s.message();
  }
  ServerConfig none;
  EXPECT_FALSE(finalize_config(&none, nullptr).ok());
  ServerConfig bad;
  EXPECT_FALSE(add_model_flag("noequals", &bad).ok());
  EXPECT_FALSE(add_model_flag("bad name=/x", &bad).ok());
  ServerConfig keyfile;
  ASSERT_TRUE(add_model_flag("a=/x", &keyfile).ok());
  keyfile.api_key_file = "/nonexistent/key";
  Status s = finalize_config(&keyfile, nullptr);
  EXPECT_NE(s.message().find("/nonexistent/key"), std::string::npos);
}

TEST(ServerConfigTest, ShippedExampleParses) {
  ServerConfig c;
  Status s = load_config_file(std::string(TANDEM_SOURCE_DIR) + "/deploy/tandem.toml", &c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_FALSE(c.models.empty());
}

TEST(MetricsTest, HistogramIsCumulative) {
  Histogram h({0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string out;
  h.render("x_seconds", "model=\"a\"", &out);
  EXPECT_NE(out.find("x_seconds_bucket{model=\"a\",le=\"0.10000000000000001\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{model=\"a\",le=\"1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{model=\"a\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("x_seconds_sum{model=\"a\"} 5.5499999999999998\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_count{model=\"a\"} 3\n"), std::string::npos);
}

TEST(MetricsTest, MemoryGaugesPerModel) {
  ModelMetrics m;
  HttpMetrics http;
  EngineStats pooled;
  pooled.weight_bytes = 4'233'000'000;
  pooled.num_pages_used = 7;
  pooled.shared_kv = true;
  pooled.kv_pages_guaranteed = 310;
  pooled.kv_pages_lent = 62;
  pooled.kv_pages_borrowed = 0;
  EngineStats own;  // no budget: weights only
  own.weight_bytes = 1000;
  std::vector<ModelSnapshot> snaps = {{"g", "ready", &m, pooled, 2048}, {"c", "ready", &m, own, 2048}};
  const std::string text = MetricsRenderer::render(snaps, http, read_process_stats(), {}, false);
  EXPECT_NE(text.find("tandem_model_weight_bytes{model=\"g\"} 4233000000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tandem_model_weight_bytes{model=\"c\"} 1000\n"), std::string::npos);
  EXPECT_NE(text.find("tandem_kv_pages_guaranteed{model=\"g\"} 310\n"), std::string::npos);
  EXPECT_NE(text.find("tandem_kv_pages_lent{model=\"g\"} 62\n"), std::string::npos);
  EXPECT_NE(text.find("tandem_kv_pages_borrowed{model=\"g\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("tandem_kv_pages_used{model=\"g\"} 7\n"), std::string::npos);
  EXPECT_EQ(text.find("tandem_kv_pages_guaranteed{model=\"c\"}"), std::string::npos);  // not pooled
}

TEST(MetricsTest, ArbiterCountersPerModel) {
  ModelMetrics m;
  HttpMetrics http;
  EngineStats arbitrated;
  memory::ArbiterStats a;
  a.steps = 12;
  a.tokens = 3400;
  a.wait_seconds = 0.25;
  a.capped = 3;
  a.urgent_steps = 7;
  arbitrated.arbiter = a;
  EngineStats alone;  // no budget: no arbiter
  std::vector<ModelSnapshot> snaps = {{"g", "ready", &m, arbitrated, 2048}, {"c", "ready", &m, alone, 2048}};
  const std::string text = MetricsRenderer::render(snaps, http, read_process_stats(), {}, false);
  for (const char* line : {"tandem_arbiter_steps_total{model=\"g\"} 12\n", "tandem_arbiter_tokens_total{model=\"g\"} 3400\n",
                           "tandem_arbiter_wait_seconds_total{model=\"g\"} 0.25\n",
                           "tandem_arbiter_capped_total{model=\"g\"} 3\n",
                           "tandem_arbiter_urgent_steps_total{model=\"g\"} 7\n",
                           "# TYPE tandem_arbiter_urgent_steps_total counter\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << text;
  EXPECT_EQ(text.find("tandem_arbiter_steps_total{model=\"c\"}"), std::string::npos);
}

TEST(MetricsTest, RenderHasEveryFamilyOnce) {
  ModelMetrics m;
  m.count_request(Outcome::kStop);
  m.add_tokens(10, 5);
  HttpMetrics http;
  http.count_response(200);
  EngineStats stats;
  stats.num_pages_total = 100;
  stats.num_pages_used = 25;
  stats.num_prefix_query_tokens = 10;
  stats.num_prefix_hit_tokens = 4;
  std::vector<ModelSnapshot> snaps = {{"a\"b", "ready", &m, stats, 2048}};
  GpuStats g;
  g.name = "H100";
  g.memory_total_bytes = 80;
  std::string text = MetricsRenderer::render(snaps, http, read_process_stats(), {g}, false);
  for (const char* family : {"tandem_requests_total", "tandem_prompt_tokens_total", "tandem_generation_tokens_total",
                             "tandem_time_to_first_token_seconds", "tandem_time_per_output_token_seconds",
                             "tandem_e2e_request_latency_seconds", "tandem_num_requests_running",
                             "tandem_num_requests_waiting", "tandem_kv_pages_used", "tandem_kv_pages_capacity",
                             "tandem_preemptions_total", "tandem_prefix_cache_hit_ratio",
                             "process_resident_memory_bytes", "tandem_gpu_memory_used_bytes",
                             "tandem_gpu_memory_total_bytes", "tandem_gpu_utilization_ratio",
                             "tandem_arbiter_steps_total", "tandem_arbiter_urgent_steps_total"}) {
    std::string type_line = std::string("# TYPE ") + family + " ";
    size_t first = text.find(type_line);
    EXPECT_NE(first, std::string::npos) << family;
    EXPECT_EQ(text.find(type_line, first + 1), std::string::npos) << family;
  }
  EXPECT_NE(text.find("tandem_kv_pages_used{model=\"a\\\"b\"} 25\n"), std::string::npos);
  EXPECT_NE(text.find("tandem_prefix_cache_hit_ratio{model=\"a\\\"b\"} 0.40000000000000002\n"), std::string::npos);
  EXPECT_NE(text.find("tandem_requests_total{model=\"a\\\"b\",outcome=\"stop\"} 1\n"), std::string::npos);
  // Without GPUs the GPU families are left out entirely.
  std::string cpu = MetricsRenderer::render(snaps, http, read_process_stats(), {}, false);
  EXPECT_EQ(cpu.find("tandem_gpu_"), std::string::npos);
}

TEST(SseTest, Framing) {
  EXPECT_EQ(sse_event("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(std::string(sse_done()), "data: [DONE]\n\n");
  // Invalid UTF-8 in a token piece must not break the JSON of a chunk.
  std::string s = dump_json(nlohmann::json{{"t", std::string("\xe2\x82")}});
  EXPECT_EQ(s, "{\"t\":\"\xef\xbf\xbd\"}");
}

}  // namespace
}  // namespace tandem::server
