#include "server/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace tandem::server {
namespace {

std::string fmt_double(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string* out, const char* name, const char* type, const char* help) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

void sample(std::string* out, const std::string& name, const std::string& labels, double value) {
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += ' ';
  *out += fmt_double(value);
  *out += '\n';
}

std::string model_label(const std::string& name) { return "model=\"" + prom_escape(name) + "\""; }

// Latency buckets (seconds) as vLLM uses for TTFT / TPOT / E2E.
std::vector<double> ttft_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> tpot_buckets() {
  return {0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0};
}
std::vector<double> e2e_buckets() {
  return {0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0};
}

}  // namespace

std::string prom_escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size(), 0) {}

void Histogram::observe(double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  }
  ++count_;
  sum_ += value;
}

void Histogram::render(const std::string& name, const std::string& labels, std::string* out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t cumulative = 0;
  std::string sep = labels.empty() ? "" : labels + ",";
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    sample(out, name + "_bucket", sep + "le=\"" + fmt_double(bounds_[i]) + "\"", static_cast<double>(cumulative));
  }
  sample(out, name + "_bucket", sep + "le=\"+Inf\"", static_cast<double>(count_));
  sample(out, name + "_sum", labels, sum_);
  sample(out, name + "_count", labels, static_cast<double>(count_));
}

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kStop: return "stop";
    case Outcome::kLength: return "length";
    case Outcome::kAborted: return "aborted";
    case Outcome::kError: return "error";
    case Outcome::kTimeout: return "timeout";
    case Outcome::kRejected: return "rejected";
    case Outcome::kQueueFull: return "queue_full";
    case Outcome::kUnavailable: return "unavailable";
  }
  return "error";
}

ModelMetrics::ModelMetrics() : ttft_s(ttft_buckets()), tpot_s(tpot_buckets()), e2e_s(e2e_buckets()) {}

void HttpMetrics::count_response(int status) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++responses_[status];
}

ProcessStats read_process_stats() {
  ProcessStats p;
  const long page = sysconf(_SC_PAGESIZE);
  const long ticks = sysconf(_SC_CLK_TCK);
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    long size = 0, resident = 0;
    if (std::fscanf(f, "%ld %ld", &size, &resident) == 2) {
      p.virtual_bytes = static_cast<int64_t>(size) * page;
      p.resident_bytes = static_cast<int64_t>(resident) * page;
    }
    std::fclose(f);
  }
  // /proc/self/stat: utime (14), stime (15), starttime (22), after the "(comm)" field.
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    size_t close = line.rfind(')');
    if (close != std::string::npos) {
      std::istringstream is(line.substr(close + 2));
      std::vector<std::string> f;
      std::string tok;
      while (is >> tok) f.push_back(tok);
      // f[0] is field 3 (state); field k is f[k - 3].
      if (f.size() > 19 && ticks > 0) {
        p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
        double start_ticks = std::stod(f[19]);
        std::ifstream st("/proc/stat");
        std::string key;
        while (st >> key) {
          if (key == "btime") {
            double btime = 0;
            st >> btime;
            p.start_time_s = btime + start_ticks / ticks;
            break;
          }
        }
      }
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    int64_t n = 0;
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    p.open_fds = n - 1;  // the directory handle itself
  }
  return p;
}

std::string MetricsRenderer::render(const std::vector<ModelSnapshot>& models, const HttpMetrics& http,
                                    const ProcessStats& process, const std::vector<GpuStats>& gpus, bool draining) {
  std::string out;
  out.reserve(16384);

  header(&out, "tandem_model_ready", "gauge", "1 when the model is loaded and healthy, else 0.");
  for (const auto& m : models) sample(&out, "tandem_model_ready", model_label(m.name), m.state == "ready" ? 1 : 0);
  header(&out, "tandem_model_max_len_tokens", "gauge", "Maximum context length of the model in tokens.");
  for (const auto& m : models) {
    if (m.max_model_len > 0) sample(&out, "tandem_model_max_len_tokens", model_label(m.name), m.max_model_len);
  }
  header(&out, "tandem_requests_total", "counter", "Generation requests by model and outcome.");
  for (const auto& m : models) {
    for (int o = 0; o < kNumOutcomes; ++o) {
      sample(&out, "tandem_requests_total",
             model_label(m.name) + ",outcome=\"" + outcome_name(static_cast<Outcome>(o)) + "\"",
             static_cast<double>(m.metrics->requests_[o].load()));
    }
  }
  header(&out, "tandem_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
  for (const auto& m : models) {
    sample(&out, "tandem_prompt_tokens_total", model_label(m.name), static_cast<double>(m.metrics->prompt_tokens_.load()));
  }
  header(&out, "tandem_generation_tokens_total", "counter", "Generated tokens of finished requests.");
  for (const auto& m : models) {
    sample(&out, "tandem_generation_tokens_total", model_label(m.name),
           static_cast<double>(m.metrics->generation_tokens_.load()));
  }
  header(&out, "tandem_time_to_first_token_seconds", "histogram", "Time from request arrival to its first token.");
  for (const auto& m : models) m.metrics->ttft_s.render("tandem_time_to_first_token_seconds", model_label(m.name), &out);
  header(&out, "tandem_time_per_output_token_seconds", "histogram", "Mean time per output token after the first, per request.");
  for (const auto& m : models) m.metrics->tpot_s.render("tandem_time_per_output_token_seconds", model_label(m.name), &out);
  header(&out, "tandem_e2e_request_latency_seconds", "histogram", "Time from request arrival to its last token.");
  for (const auto& m : models) m.metrics->e2e_s.render("tandem_e2e_request_latency_seconds", model_label(m.name), &out);

  // Engine gauges, only for models whose engine runs.
  struct Gauge {
    const char* name;
    const char* type;
    const char* help;
    double (*get)(const EngineStats&);
  };
  // One metric family per gauge, a sample per model whose stats `has` accepts.
  auto render_gauges = [&](const auto& gauges, auto has) {
    for (const Gauge& g : gauges) {
      header(&out, g.name, g.type, g.help);
      for (const auto& m : models) {
        if (m.stats && has(*m.stats)) sample(&out, g.name, model_label(m.name), g.get(*m.stats));
      }
    }
  };
  static const Gauge kGauges[] = {
      {"tandem_num_requests_running", "gauge", "Sequences in the running batch.",
       [](const EngineStats& s) { return double(s.num_running); }},
      {"tandem_num_requests_waiting", "gauge", "Sequences waiting to be scheduled.",
       [](const EngineStats& s) { return double(s.num_waiting); }},
      {"tandem_kv_pages_used", "gauge", "KV cache pages in use.",
       [](const EngineStats& s) { return double(s.num_pages_used); }},
      {"tandem_kv_pages_capacity", "gauge", "KV cache pages of the model (used + free).",
       [](const EngineStats& s) { return double(s.num_pages_total); }},
      {"tandem_kv_usage_ratio", "gauge", "Fraction of the model's KV cache pages in use.",
       [](const EngineStats& s) { return s.num_pages_total > 0 ? double(s.num_pages_used) / s.num_pages_total : 0.0; }},
      {"tandem_preemptions_total", "counter", "Sequences preempted (pages reclaimed) since start.",
       [](const EngineStats& s) { return double(s.num_preemptions); }},
      {"tandem_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
       [](const EngineStats& s) { return double(s.num_prefix_query_tokens); }},
      {"tandem_prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.",
       [](const EngineStats& s) { return double(s.num_prefix_hit_tokens); }},
      {"tandem_prefix_cache_hit_ratio", "gauge", "Prefix cache hits over queries since start (tokens).",
       [](const EngineStats& s) {
         return s.num_prefix_query_tokens > 0 ? double(s.num_prefix_hit_tokens) / s.num_prefix_query_tokens : 0.0;
       }},
      {"tandem_engine_steps_total", "counter", "Engine steps run.",
       [](const EngineStats& s) { return double(s.num_steps); }},
      {"tandem_engine_healthy", "gauge", "1 while the engine is healthy.",
       [](const EngineStats& s) { return s.healthy ? 1.0 : 0.0; }},
  };
  render_gauges(kGauges, [](const EngineStats&) { return true; });
  // Memory (docs/memory.md): weights always; the shared KV pool's page counts with --gpu-budget.
  header(&out, "tandem_model_weight_bytes", "gauge", "Backend memory held by the model's weights.");
  for (const auto& m : models) {
    if (m.stats && m.stats->weight_bytes > 0)
      sample(&out, "tandem_model_weight_bytes", model_label(m.name), double(m.stats->weight_bytes));
  }
  static const Gauge kPoolGauges[] = {
      {"tandem_kv_pages_guaranteed", "gauge", "KV pages guaranteed to the model by the shared pool (--gpu-budget).",
       [](const EngineStats& s) { return double(s.kv_pages_guaranteed); }},
      {"tandem_kv_pages_lent", "gauge", "Pages of the model's unused guarantee that other models hold now.",
       [](const EngineStats& s) { return double(s.kv_pages_lent); }},
      {"tandem_kv_pages_borrowed", "gauge", "KV pages the model holds above its guarantee.",
       [](const EngineStats& s) { return double(s.kv_pages_borrowed); }},
  };
  render_gauges(kPoolGauges, [](const EngineStats& s) { return s.shared_kv; });
  // The step arbiter (--gpu-budget; memory/arbiter.h), as of the engine's last step.
  static const Gauge kArbiterCounters[] = {
      {"tandem_arbiter_steps_total", "counter", "Engine steps the step arbiter granted the model (--gpu-budget).",
       [](const EngineStats& s) { return double(s.arbiter->steps); }},
      {"tandem_arbiter_tokens_total", "counter", "Tokens of the steps the step arbiter granted the model.",
       [](const EngineStats& s) { return double(s.arbiter->tokens); }},
      {"tandem_arbiter_wait_seconds_total", "counter", "Time the model's engine waited for the step arbiter's grant.",
       [](const EngineStats& s) { return s.arbiter->wait_seconds; }},
      {"tandem_arbiter_capped_total", "counter",
       "Steps shortened to --shared-step-tokens while another model was in the round.",
       [](const EngineStats& s) { return double(s.arbiter->capped); }},
      {"tandem_arbiter_urgent_steps_total", "counter",
       "Steps granted as urgent (least attained service): high stream priority with --concurrent-steps 2.",
       [](const EngineStats& s) { return double(s.arbiter->urgent_steps); }},
  };
  render_gauges(kArbiterCounters, [](const EngineStats& s) { return s.arbiter.has_value(); });

  header(&out, "tandem_http_responses_total", "counter", "HTTP responses by status code.");
  {
    std::lock_guard<std::mutex> lock(http.mutex_);
    for (const auto& [code, n] : http.responses_) {
      sample(&out, "tandem_http_responses_total", "code=\"" + std::to_string(code) + "\"", static_cast<double>(n));
    }
  }
  header(&out, "tandem_http_connections_open", "gauge", "Open HTTP connections.");
  sample(&out, "tandem_http_connections_open", "", static_cast<double>(http.connections_open.load()));
  header(&out, "tandem_http_connections_total", "counter", "HTTP connections accepted since start.");
  sample(&out, "tandem_http_connections_total", "", static_cast<double>(http.connections_total.load()));
  header(&out, "tandem_server_draining", "gauge", "1 after SIGTERM while running requests finish.");
  sample(&out, "tandem_server_draining", "", draining ? 1 : 0);

  if (process.resident_bytes >= 0) {
    header(&out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    sample(&out, "process_resident_memory_bytes", "", static_cast<double>(process.resident_bytes));
    header(&out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    sample(&out, "process_virtual_memory_bytes", "", static_cast<double>(process.virtual_bytes));
  }
  if (process.cpu_seconds >= 0) {
    header(&out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    sample(&out, "process_cpu_seconds_total", "", process.cpu_seconds);
  }
  if (process.start_time_s >= 0) {
    header(&out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    sample(&out, "process_start_time_seconds", "", process.start_time_s);
  }
  if (process.open_fds >= 0) {
    header(&out, "process_open_fds", "gauge", "Number of open file descriptors.");
    sample(&out, "process_open_fds", "", static_cast<double>(process.open_fds));
  }

  if (!gpus.empty()) {
    auto gpu_label = [](const GpuStats& g) {
      return "gpu=\"" + std::to_string(g.index) + "\",name=\"" + prom_escape(g.name) + "\"";
    };
    header(&out, "tandem_gpu_memory_used_bytes", "gauge", "GPU memory in use (all processes), from NVML.");
    for (const auto& g : gpus) sample(&out, "tandem_gpu_memory_used_bytes", gpu_label(g), double(g.memory_used_bytes));
    header(&out, "tandem_gpu_memory_total_bytes", "gauge", "GPU memory in total, from NVML.");
    for (const auto& g : gpus) sample(&out, "tandem_gpu_memory_total_bytes", gpu_label(g), double(g.memory_total_bytes));
    bool any_utilization = false;
    for (const auto& g : gpus) any_utilization |= g.has_utilization;
    if (any_utilization) {
      header(&out, "tandem_gpu_utilization_ratio", "gauge", "GPU busy fraction over NVML's last sample period.");
      for (const auto& g : gpus) {
        if (g.has_utilization) sample(&out, "tandem_gpu_utilization_ratio", gpu_label(g), g.utilization_ratio);
      }
    }
  }
  return out;
}

}  // namespace tandem::server
