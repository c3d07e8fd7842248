// NvmlReader against a fake libnvidia-ml (tests/server_testing/fake_nvml.c):
// loading, the start-up probe, each failing call named, partial series.
#include <gtest/gtest.h>
#include <stdlib.h>

#include "server/metrics.h"
#include "server/nvml.h"

namespace tandem::server {
namespace {

struct FakeMode {
  explicit FakeMode(const char* mode) { setenv("FAKE_NVML", mode, 1); }
  ~FakeMode() { unsetenv("FAKE_NVML"); }
};

std::string render(const std::vector<GpuStats>& gpus) {
  HttpMetrics http;
  return MetricsRenderer::render({}, http, ProcessStats{}, gpus, false);
}

TEST(NvmlTest, MissingLibraryIsNamed) {
  NvmlReader r("libnvidia-ml-does-not-exist.so.1");
  EXPECT_FALSE(r.available());
  EXPECT_NE(r.why_unavailable().find("cannot load libnvidia-ml-does-not-exist.so.1"), std::string::npos)
      << r.why_unavailable();
  EXPECT_TRUE(r.read().empty());
}

TEST(NvmlTest, LibraryWithoutNvmlSymbols) {
  NvmlReader r("libm.so.6");
  EXPECT_FALSE(r.available());
  EXPECT_NE(r.why_unavailable().find("lacks nvmlInit_v2"), std::string::npos) << r.why_unavailable();
}

TEST(NvmlTest, ReadsEveryGpu) {
  FakeMode mode("ok");
  NvmlReader r(TANDEM_FAKE_NVML);
  ASSERT_TRUE(r.available()) << r.why_unavailable();
  EXPECT_EQ(r.summary(), "2 GPUs (Fake GPU \"A\")");
  auto gpus = r.read();
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[1].index, 1);
  EXPECT_EQ(gpus[1].name, "Fake GPU B");
  EXPECT_EQ(gpus[1].memory_used_bytes, 2ull << 30);
  EXPECT_EQ(gpus[1].memory_total_bytes, 80ull << 30);
  EXPECT_DOUBLE_EQ(gpus[1].utilization_ratio, 0.42);
  std::string text = render(gpus);
  EXPECT_NE(text.find("tandem_gpu_memory_used_bytes{gpu=\"0\",name=\"Fake GPU \\\"A\\\"\"} 1073741824\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("tandem_gpu_utilization_ratio{gpu=\"1\",name=\"Fake GPU B\"} 0.41999999999999998\n"),
            std::string::npos) << text;
}

TEST(NvmlTest, InitFailureIsNamedWithNvmlsMessage) {
  FakeMode mode("init_fails");
  NvmlReader r(TANDEM_FAKE_NVML);
  EXPECT_FALSE(r.available());
  EXPECT_EQ(r.why_unavailable(), "nvmlInit failed: Driver Not Loaded (9)");
  EXPECT_TRUE(r.read().empty());
}

TEST(NvmlTest, NoGpu) {
  FakeMode mode("no_gpu");
  NvmlReader r(TANDEM_FAKE_NVML);
  EXPECT_FALSE(r.available());
  EXPECT_EQ(r.why_unavailable(), "NVML sees no GPU");
}

TEST(NvmlTest, MemoryQueryRefusedEverywhereIsNamed) {
  FakeMode mode("memory_fails");
  NvmlReader r(TANDEM_FAKE_NVML);
  EXPECT_FALSE(r.available());
  EXPECT_EQ(r.why_unavailable(), "no GPU's memory could be read through NVML");
}

TEST(NvmlTest, FallsBackToVersionedMemoryQuery) {
  FakeMode mode("memory_v1_fails");
  NvmlReader r(TANDEM_FAKE_NVML);
  ASSERT_TRUE(r.available()) << r.why_unavailable();
  auto gpus = r.read();
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].memory_used_bytes, (1ull << 30) + 7);
}

TEST(NvmlTest, UtilizationRefusedKeepsMemorySeries) {
  FakeMode mode("util_fails");
  NvmlReader r(TANDEM_FAKE_NVML);
  ASSERT_TRUE(r.available()) << r.why_unavailable();
  auto gpus = r.read();
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_FALSE(gpus[0].has_utilization);
  std::string text = render(gpus);
  EXPECT_NE(text.find("tandem_gpu_memory_total_bytes{gpu=\"1\""), std::string::npos);
  EXPECT_EQ(text.find("tandem_gpu_utilization_ratio"), std::string::npos);
}

}  // namespace
}  // namespace tandem::server
