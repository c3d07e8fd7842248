#include <cmath>

#include <gtest/gtest.h>

#include "bench/http.h"
#include "bench/options.h"

namespace tandem::bench {
namespace {

TEST(Options, ParseSlo) {
  auto s = parse_slo("ttft=200ms,tpot=50ms");
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(*s->ttft_s, 0.2);
  EXPECT_DOUBLE_EQ(*s->tpot_s, 0.05);
  EXPECT_FALSE(s->e2e_s);
  s = parse_slo("e2e=2s,ttft:300");  // vLLM's NAME:MS also works
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(*s->e2e_s, 2.0);
  EXPECT_DOUBLE_EQ(*s->ttft_s, 0.3);
  EXPECT_FALSE(parse_slo("ttft").ok());
  EXPECT_FALSE(parse_slo("ttft=-1ms").ok());
  EXPECT_FALSE(parse_slo("ttft=fast").ok());
  auto bad = parse_slo("latency=1s");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("latency"), std::string::npos);
}

TEST(Options, ParseRatesAndWeights) {
  auto r = parse_rates("1,2.5,inf");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[1], 2.5);
  EXPECT_TRUE(std::isinf((*r)[2]));
  EXPECT_FALSE(parse_rates("1,,2").ok());
  EXPECT_FALSE(parse_rates("0").ok());
  EXPECT_FALSE(parse_rates("fast").ok());
  EXPECT_FALSE(parse_weights("1,-2").ok());
  EXPECT_EQ(rate_to_string(std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(rate_to_string(2.5), "2.5");
}

TEST(Options, ValidateNamesTheBadFlag) {
  BenchOptions o;
  o.models = {"a"};
  EXPECT_TRUE(o.validate().ok());
  auto bad = [&](auto mutate, const char* flag) {
    BenchOptions c = o;
    mutate(c);
    Status s = c.validate();
    EXPECT_FALSE(s.ok()) << flag;
    EXPECT_NE(s.message().find(flag), std::string::npos) << s.message();
  };
  bad([](BenchOptions& c) { c.base_url = "https://x"; }, "https");
  bad([](BenchOptions& c) { c.models.clear(); }, "--model");
  bad([](BenchOptions& c) { c.mix = {1, 2}; }, "--mix");
  bad([](BenchOptions& c) { c.num_prompts = 0; }, "--num-prompts");
  bad([](BenchOptions& c) { c.burstiness = 0; }, "--burstiness");
  bad([](BenchOptions& c) { c.range_ratio = 1.5; }, "--range-ratio");
  bad([](BenchOptions& c) { c.input_len = -1; }, "--input-len");
  bad([](BenchOptions& c) { c.max_concurrency = -1; }, "--max-concurrency");
}

TEST(BaseUrl, Parse) {
  auto a = parse_base_url("http://127.0.0.1:8000");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "8000");
  EXPECT_EQ(a->path_prefix, "");
  a = parse_base_url("http://example.com/v1/");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, "80");
  EXPECT_EQ(a->path_prefix, "");
  EXPECT_EQ(a->host_header(), "example.com");
  a = parse_base_url("http://[::1]:9000/proxy");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->path_prefix, "/proxy");
  EXPECT_FALSE(parse_base_url("https://x").ok());
  EXPECT_FALSE(parse_base_url("127.0.0.1:8000").ok());
  EXPECT_FALSE(parse_base_url("http://h:99999").ok());
  EXPECT_FALSE(parse_base_url("http://h:abc").ok());
  EXPECT_FALSE(parse_base_url("http://:80").ok());
}

}  // namespace
}  // namespace tandem::bench
