// Percentiles and metrics on known timings; the values were worked by hand with
// numpy.percentile's default (linear) method.
#include "bench/stats.h"

#include <gtest/gtest.h>

namespace tandem::bench {
namespace {

TEST(Percentile, LinearInterpolationLikeNumpy) {
  // np.percentile([1,2,3,4], [50,90,99]) == [2.5, 3.7, 3.97]
  std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_NEAR(percentile(v, 90), 3.7, 1e-12);
  EXPECT_NEAR(percentile(v, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4);
  // np.percentile([15,20,35,40,50], [50,90,99]) == [35, 46, 49.6]
  std::vector<double> w = {15, 20, 35, 40, 50};
  EXPECT_DOUBLE_EQ(percentile(w, 50), 35);
  EXPECT_NEAR(percentile(w, 90), 46, 1e-12);
  EXPECT_NEAR(percentile(w, 99), 49.6, 1e-12);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);  // vLLM: np.percentile(values or 0, q)
}

TEST(Percentile, HundredValues) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_NEAR(percentile(v, 50), 50.5, 1e-12);
  EXPECT_NEAR(percentile(v, 90), 90.1, 1e-12);
  EXPECT_NEAR(percentile(v, 99), 99.01, 1e-12);
}

RequestResult ok(int model, double ttft, double e2e, int out, std::vector<double> itl, int in = 10) {
  RequestResult r;
  r.success = true;
  r.model_index = model;
  r.ttft_s = ttft;
  r.e2e_s = e2e;
  r.tokens_output = out;
  r.tokens_prompt = in;
  r.itl_s = std::move(itl);
  r.usage_seen = true;
  return r;
}

TEST(Metrics, DefinitionsOnKnownTimings) {
  std::vector<RequestResult> results = {
      ok(0, 0.100, 0.500, 5, {0.1, 0.1, 0.1, 0.1}),  // TPOT (0.5-0.1)/4 = 0.1
      ok(0, 0.200, 0.800, 4, {0.2, 0.2, 0.2}),       // TPOT 0.2
      ok(1, 0.050, 0.050, 1, {}),                    // one token: no TPOT sample
  };
  RequestResult bad;
  bad.model_index = 1;
  bad.error_kind = ErrorKind::kHttpStatus;
  bad.error = "HTTP 500";
  results.push_back(bad);

  Metrics m = compute_metrics(results, 2.0, Slo{});
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_output_tokens, 10);
  EXPECT_EQ(m.total_input_tokens, 30);
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(m.output_throughput, 5.0);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 20.0);
  EXPECT_DOUBLE_EQ(m.goodput, 1.5);  // no SLO: every completed request
  EXPECT_NEAR(m.ttft.mean, (100 + 200 + 50) / 3.0, 1e-9);
  EXPECT_NEAR(m.ttft.p50, 100, 1e-9);
  EXPECT_EQ(m.tpot.count, 2);
  EXPECT_NEAR(m.tpot.mean, 150, 1e-9);
  EXPECT_NEAR(m.tpot.p90, 190, 1e-9);
  EXPECT_EQ(m.itl.count, 7);
  EXPECT_NEAR(m.itl.p50, 100, 1e-9);
  EXPECT_NEAR(m.e2e.p99, 500 + 0.98 * 300, 1e-9);

  Metrics m1 = compute_metrics(results, 2.0, Slo{}, 1);
  EXPECT_EQ(m1.completed, 1);
  EXPECT_EQ(m1.failed, 1);
  EXPECT_EQ(m1.tpot.count, 0);
  EXPECT_DOUBLE_EQ(m1.tpot.p50, 0);
}

TEST(Metrics, GoodputCountsRequestsMeetingEverySlo) {
  std::vector<RequestResult> results = {
      ok(0, 0.100, 0.500, 5, {}),  // TTFT 100 ms, TPOT 100 ms
      ok(0, 0.300, 0.700, 5, {}),  // TTFT 300 ms, TPOT 100 ms
      ok(0, 0.100, 0.200, 5, {}),  // TTFT 100 ms, TPOT 25 ms
      ok(0, 0.150, 0.150, 1, {}),  // one token: TPOT counts as 0
  };
  Slo slo;
  slo.ttft_s = 0.2;
  slo.tpot_s = 0.05;
  Metrics m = compute_metrics(results, 4.0, slo);
  EXPECT_EQ(m.good_completed, 2);
  EXPECT_DOUBLE_EQ(m.goodput, 0.5);
  slo.tpot_s.reset();
  EXPECT_EQ(compute_metrics(results, 4.0, slo).good_completed, 3);
  slo.e2e_s = 0.4;
  EXPECT_EQ(compute_metrics(results, 4.0, slo).good_completed, 2);
}

TEST(Metrics, JsonHasEveryField) {
  Metrics m = compute_metrics({ok(0, 0.1, 0.2, 3, {0.05, 0.05})}, 1.0, Slo{});
  auto j = m.to_json();
  for (const char* k : {"completed", "failed", "duration_s", "request_throughput", "output_throughput",
                        "total_token_throughput", "goodput"})
    EXPECT_TRUE(j.contains(k) && j[k].is_number()) << k;
  for (const char* k : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"}) {
    ASSERT_TRUE(j.contains(k)) << k;
    for (const char* p : {"mean", "p50", "p90", "p99"}) EXPECT_TRUE(j[k][p].is_number()) << k << "." << p;
  }
  EXPECT_NEAR(j["tpot_ms"]["mean"].get<double>(), 50, 1e-9);
}

TEST(Errors, CountsByKindAndFirstDistinctMessages) {
  std::vector<RequestResult> results(8);
  for (int i = 0; i < 8; ++i) {
    results[i].error_kind = i < 5 ? ErrorKind::kTimeout : ErrorKind::kConnect;
    results[i].error = "message " + std::to_string(i % 3);
  }
  auto s = summarize_errors(results, 2);
  EXPECT_EQ(s.counts["timeout"], 5);
  EXPECT_EQ(s.counts["connect"], 3);
  EXPECT_EQ(s.first_messages, (std::vector<std::string>{"message 0", "message 1"}));
}

}  // namespace
}  // namespace tandem::bench
