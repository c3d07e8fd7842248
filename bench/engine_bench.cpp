// Engine benchmarks.
//
// 1. Bookkeeping: the cost of one engine step (schedule, batch arrays, KV
//    bookkeeping, prefix hashing, sampling of a tiny vocabulary, stop checks,
//    events) at N running sequences, with a model runner that does no compute.
// 2. Throughput (with --model DIR): output tokens per second of the CPU engine
//    at 1, 8 and 32 concurrent sequences on a real checkpoint, and the ratio to 1.
//
//   build/bench/engine_bench --seqs 512 --steps 300
//   build/bench/engine_bench --model models/tandem-tiny-general --threads 2
//   build/bench/engine_bench --seqs 0 --synth 100m [--quant awq] --threads 1 --new-tokens 16
//     (a random ~110M model written to /tmp: weights that do not fit the caches)
#include <CLI/CLI.hpp>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend/registry.h"
#include "engine/engine.h"
#include "model/model_runner.h"
#include "model/synth.h"
#include "synth_100m.h"

namespace tandem {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
// This thread's CPU time: unlike wall time, not inflated when other processes share the cores.
double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// No compute: zero logits (greedy then picks token 0), timed separately.
class NullRunner : public ModelRunner {
 public:
  NullRunner(int vocab, int num_pages, int page_size) : vocab_(vocab), num_pages_(num_pages), page_size_(page_size) {}
  Status forward(const ForwardBatch& b, std::vector<float>* logits) override {
    auto t = Clock::now();
    ++calls_;
    logits->assign(b.logits_rows.size() * static_cast<size_t>(vocab_), 0.0f);
    forward_seconds_ += seconds_since(t);
    return Status();
  }
  Status copy_pages(const std::vector<std::pair<int32_t, int32_t>>&) override { return Status(); }
  int vocab_size() const override { return vocab_; }
  int num_pages() const override { return num_pages_; }
  int page_size() const override { return page_size_; }
  int64_t num_forward_calls() const override { return calls_; }
  double forward_seconds_ = 0;

 private:
  int vocab_, num_pages_, page_size_;
  int64_t calls_ = 0;
};

int bookkeeping(int num_seqs, int num_steps, int prompt_len, int vocab) {
  const int page_size = 16;
  const int max_len = prompt_len + num_steps + 64;
  const int pages = num_seqs * ((max_len + page_size - 1) / page_size) + 16;
  NullRunner runner(vocab, pages, page_size);
  EngineConfig c;
  c.cache.page_size = page_size;
  c.scheduler.max_num_seqs = num_seqs;
  c.scheduler.max_num_batched_tokens = std::max(8192, num_seqs);
  c.scheduler.max_queue_len = num_seqs;
  c.seed = 1;
  auto engine = Engine::create(c, &runner, nullptr);
  if (!engine.ok()) {
    std::fprintf(stderr, "engine: %s\n", engine.status().to_string().c_str());
    return 1;
  }
  std::mt19937 rng(7);
  int64_t events = 0;
  for (int i = 0; i < num_seqs; ++i) {
    GenerateRequest r;
    r.request_id = "r" + std::to_string(i);
    for (int k = 0; k < prompt_len; ++k) r.prompt_token_ids.push_back(static_cast<int32_t>(rng() % vocab));
    r.sampling.temperature = 0.0f;
    r.sampling.max_tokens = num_steps + 32;
    r.sampling.ignore_eos = true;
    r.sink = [&events](RequestEvent&&) { ++events; };
    if (Status st = (*engine)->add_request(std::move(r)); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      return 1;
    }
  }
  // Prefill until every sequence decodes.
  while ((*engine)->stats().num_running < num_seqs || (*engine)->last_schedule().num_tokens != num_seqs) {
    if (Status st = (*engine)->step(); !st.ok()) return 1;
  }
  runner.forward_seconds_ = 0;
  std::vector<double> per_step, per_step_cpu;
  for (int s = 0; s < num_steps; ++s) {
    auto t = Clock::now();
    double c0 = thread_cpu_seconds();
    if (Status st = (*engine)->step(); !st.ok()) return 1;
    per_step_cpu.push_back(thread_cpu_seconds() - c0);
    per_step.push_back(seconds_since(t));
  }
  std::sort(per_step_cpu.begin(), per_step_cpu.end());
  double total_cpu = 0;
  for (double x : per_step_cpu) total_cpu += x;
  std::sort(per_step.begin(), per_step.end());
  double total = 0;
  for (double x : per_step) total += x;
  double mean_us = total / num_steps * 1e6;
  double fwd_us = runner.forward_seconds_ / num_steps * 1e6;
  std::printf("bookkeeping: %d running sequences (prompt %d, page %d, vocab %d), %d decode steps\n", num_seqs,
              prompt_len, page_size, vocab, num_steps);
  std::printf("  step mean %.1f us, p50 %.1f us, p99 %.1f us; of which null forward %.1f us; engine %.1f us\n",
              mean_us, per_step[num_steps / 2] * 1e6, per_step[num_steps * 99 / 100] * 1e6, fwd_us, mean_us - fwd_us);
  std::printf("  thread CPU time per step: mean %.1f us, p50 %.1f us, p99 %.1f us (%.3f us per sequence)\n",
              total_cpu / num_steps * 1e6, per_step_cpu[num_steps / 2] * 1e6,
              per_step_cpu[num_steps * 99 / 100] * 1e6, total_cpu / num_steps * 1e6 / num_seqs);
  return 0;
}

int throughput(const std::string& dir, int threads, int prompt_len, int new_tokens, bool dummy) {
  const int page_size = 16;
  const int max_conc = 32;
  ModelRunnerOptions ro;
  ro.page_size = page_size;
  ro.num_pages = max_conc * ((prompt_len + new_tokens + page_size - 1) / page_size + 1);
  ro.load.dummy = dummy;
  BackendOptions bo;
  bo.cpu_threads = threads;
  auto backend = create_backend("cpu", bo);
  if (!backend.ok()) {
    std::fprintf(stderr, "backend: %s\n", backend.status().to_string().c_str());
    return 1;
  }
  auto runner = LocalModelRunner::create(std::move(*backend), dir, ro);
  if (!runner.ok()) {
    std::fprintf(stderr, "model: %s\n", runner.status().to_string().c_str());
    return 1;
  }
  const int vocab = (*runner)->vocab_size();
  std::printf("throughput: %s on cpu (%d threads), prompt %d, %d new tokens each (greedy, ignore_eos)\n",
              dir.c_str(), threads, prompt_len, new_tokens);
  double base = 0, base_cpu = 0, base_dec = 0, base_dec_cpu = 0;
  for (int conc : {1, 8, 32}) {
    EngineConfig c;
    c.cache.page_size = page_size;
    c.scheduler.max_num_seqs = conc;
    c.scheduler.max_num_batched_tokens = 2048;
    c.scheduler.max_model_len = prompt_len + new_tokens;
    c.seed = 1;
    auto engine = Engine::create(c, runner->get(), nullptr);
    if (!engine.ok()) {
      std::fprintf(stderr, "engine: %s\n", engine.status().to_string().c_str());
      return 1;
    }
    std::mt19937 rng(11);
    int64_t out_tokens = 0;
    for (int i = 0; i < conc; ++i) {
      GenerateRequest r;
      r.request_id = "r" + std::to_string(i);
      for (int k = 0; k < prompt_len; ++k) r.prompt_token_ids.push_back(3 + static_cast<int32_t>(rng() % (vocab - 3)));
      r.sampling.temperature = 0.0f;
      r.sampling.max_tokens = new_tokens;
      r.sampling.ignore_eos = true;
      r.sink = [&out_tokens](RequestEvent&& ev) { out_tokens += static_cast<int64_t>(ev.tokens.size()); };
      if (Status st = (*engine)->add_request(std::move(r)); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.to_string().c_str());
        return 1;
      }
    }
    int64_t calls0 = (*runner)->num_forward_calls();
    auto t = Clock::now();
    double cpu0 = process_cpu_seconds();
    double decode_secs = 0, decode_cpu = 0;
    int64_t decode_tokens = 0;
    while ((*engine)->has_work()) {
      auto ts = Clock::now();
      double cs = process_cpu_seconds();
      if (Status st = (*engine)->step(); !st.ok()) {
        std::fprintf(stderr, "step: %s\n", st.to_string().c_str());
        return 1;
      }
      const SchedulerOutput& so = (*engine)->last_schedule();
      if (!so.scheduled.empty() && so.num_tokens == static_cast<int>(so.scheduled.size())) {  // decodes only
        decode_secs += seconds_since(ts);
        decode_cpu += process_cpu_seconds() - cs;
        decode_tokens += so.num_tokens;
      }
    }
    double secs = seconds_since(t);
    double cpu = process_cpu_seconds() - cpu0;
    double tps = out_tokens / secs;
    double cpu_tps = out_tokens / cpu;
    if (conc == 1) {
      base = tps;
      base_cpu = cpu_tps;
    }
    std::printf("  concurrency %2d: %5lld tokens, %3lld forward calls, wall %7.3f s = %7.1f tokens/s (x%.2f of 1); "
                "CPU %7.3f s = %7.1f tokens per CPU-second (x%.2f of 1)\n",
                conc, static_cast<long long>(out_tokens),
                static_cast<long long>((*runner)->num_forward_calls() - calls0), secs, tps, tps / base, cpu, cpu_tps,
                cpu_tps / base_cpu);
    double dec = decode_tokens / decode_secs, dec_cpu = decode_tokens / decode_cpu;
    if (conc == 1) {
      base_dec = dec;
      base_dec_cpu = dec_cpu;
    }
    std::printf("                  decode steps only: %7.1f tokens/s (x%.2f of 1), %7.1f tokens per CPU-second (x%.2f of 1)\n",
                dec, dec / base_dec, dec_cpu, dec_cpu / base_dec_cpu);
  }
  return 0;
}

}  // namespace
}  // namespace tandem

int main(int argc, char** argv) {
  CLI::App app{"Engine benchmarks: step bookkeeping cost, CPU throughput by concurrency", "engine_bench"};
  int seqs = 512, steps = 300, prompt_len = 128, vocab = 32, threads = 0, new_tokens = 64, tp_prompt = 32;
  std::string model, synth, quant = "none";
  app.add_option("--seqs", seqs, "running sequences for the bookkeeping benchmark");
  app.add_option("--steps", steps, "decode steps timed");
  app.add_option("--prompt-len", prompt_len, "prompt tokens per sequence (bookkeeping)");
  app.add_option("--vocab", vocab, "vocabulary of the null model (sampling cost grows with it)");
  app.add_option("--model", model, "checkpoint folder: also run the CPU throughput benchmark");
  std::string load_format = "auto";
  app.add_option("--load-format", load_format, "dummy: random weights from --model's config.json alone")
      ->check(CLI::IsMember({"auto", "dummy"}));
  app.add_option("--synth", synth, "100m: write a random ~110M checkpoint to /tmp and use it as --model")
      ->check(CLI::IsMember({"100m"}));
  app.add_option("--quant", quant, "with --synth: none, awq or gptq")->check(CLI::IsMember({"none", "awq", "gptq"}));
  app.add_option("--threads", threads, "CPU threads for the model (0: all cores)");
  app.add_option("--new-tokens", new_tokens, "tokens generated per sequence (throughput)");
  app.add_option("--tp-prompt-len", tp_prompt, "prompt tokens per sequence (throughput)");
  CLI11_PARSE(app, argc, argv);
  if (seqs > 0 && tandem::bookkeeping(seqs, steps, prompt_len, vocab) != 0) return 1;
  std::string tmp_dir;
  if (!synth.empty()) {
    if (!model.empty()) {
      std::fprintf(stderr, "give --model or --synth, not both\n");
      return 2;
    }
    tmp_dir = (std::filesystem::temp_directory_path() / ("tandem_engine_bench_100m_" + quant)).string();
    if (tandem::Status s = tandem::write_synthetic_checkpoint(tmp_dir, tandem::bench::synth_100m_options(quant));
        !s.ok()) {
      std::fprintf(stderr, "%s\n", s.to_string().c_str());
      return 1;
    }
    model = tmp_dir;
  }
  const int rc = !model.empty() && tandem::throughput(model, threads, tp_prompt, new_tokens, load_format == "dummy") != 0 ? 1 : 0;
  if (!tmp_dir.empty()) std::filesystem::remove_all(tmp_dir);
  return rc;
}
