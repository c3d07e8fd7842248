// Server metrics and their Prometheus text exposition (format 0.0.4), written
// by hand. Per-model counters and histograms are updated by request handlers;
// engine gauges (running, waiting, KV pages, ...) are read from EngineStats at
// scrape time.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/api.h"

namespace tandem::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends the _bucket/_sum/_count lines of one labeled series.
  void render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // GUARDED_BY(mutex_), one per bound, not cumulative
  uint64_t count_ = 0;            // GUARDED_BY(mutex_)
  double sum_ = 0;                // GUARDED_BY(mutex_)
};

// How a generation request ended, as counted in tandem_requests_total.
enum class Outcome { kStop, kLength, kAborted, kError, kTimeout, kRejected, kQueueFull, kUnavailable };
const char* outcome_name(Outcome o);
constexpr int kNumOutcomes = 8;

class ModelMetrics {
 public:
  ModelMetrics();
  void count_request(Outcome outcome) { requests_[static_cast<int>(outcome)].fetch_add(1); }
  void add_tokens(int64_t prompt, int64_t generated) {
    prompt_tokens_.fetch_add(prompt);
    generation_tokens_.fetch_add(generated);
  }
  Histogram ttft_s, tpot_s, e2e_s;

 private:
  friend class MetricsRenderer;
  std::atomic<uint64_t> requests_[kNumOutcomes] = {};
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> generation_tokens_{0};
};

// Counters of the HTTP layer, shared by all connections.
class HttpMetrics {
 public:
  void count_response(int status);
  std::atomic<int64_t> connections_open{0};
  std::atomic<uint64_t> connections_total{0};

 private:
  friend class MetricsRenderer;
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_;  // GUARDED_BY(mutex_), by status code
};

struct ModelSnapshot {
  std::string name;
  std::string state;                // starting | ready | failed | unhealthy
  const ModelMetrics* metrics = nullptr;
  std::optional<EngineStats> stats; // present once the engine runs
  int max_model_len = 0;
};

struct ProcessStats {
  int64_t resident_bytes = -1;
  int64_t virtual_bytes = -1;
  double cpu_seconds = -1;
  double start_time_s = -1;        // unix time
  int64_t open_fds = -1;
};
ProcessStats read_process_stats();

struct GpuStats {
  int index = 0;
  std::string name;
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
  bool has_utilization = true;     // NVML may refuse the query (e.g. under MIG)
  double utilization_ratio = 0;    // 0..1 over NVML's last sample period
};

class MetricsRenderer {
 public:
  static std::string render(const std::vector<ModelSnapshot>& models, const HttpMetrics& http,
                            const ProcessStats& process, const std::vector<GpuStats>& gpus, bool draining);
};

// Escapes a label value for the text format (\\, \", \n).
std::string prom_escape(const std::string& value);

}  // namespace tandem::server
