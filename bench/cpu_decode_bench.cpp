// CPU decode speed: tokens/s and the memory bandwidth it achieves (weight bytes
// streamed per token x tokens/s), next to a read-bandwidth baseline measured in
// the same run. A benchmark, not a test: it prints numbers.
//
//   build/bench/cpu_decode_bench --model DIR [--tokens 64] [--prompt 32] [--threads N] [--blas-prefill]
//   build/bench/cpu_decode_bench --model CONFIG.json --load-format dummy ...  (random weights, no files)
//   build/bench/cpu_decode_bench --synth 100m [--quant awq] ...   (writes a random ~110M model to /tmp)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/thread_pool.h"
#include "engine/generate_single.h"
#include "model/model_runner.h"
#include "model/synth.h"
#include "synth_100m.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Read bandwidth with all threads over a buffer much larger than the caches,
// through the same SIMD dot kernel the GEMVs use (best of 5).
double read_bandwidth_gbs(int threads) {
  const size_t n = size_t{1} << 27;  // 512 MiB of floats
  std::vector<float> buf(n, 1.0f);
  tandem::cpu::ThreadPool pool(threads);
  const tandem::cpu::Kernels kern = tandem::cpu::select_kernels();
  std::vector<float> sink(64, 0.0f);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = Clock::now();
    pool.parallel_for(static_cast<int64_t>(n), 1 << 20, [&](int64_t b, int64_t e) {
      sink[(b >> 20) % sink.size()] += kern.dot_f32(buf.data() + b, buf.data() + b, e - b);
    });
    best = std::max(best, static_cast<double>(n * sizeof(float)) / seconds(t0) / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, synth, quant = "none";
  int tokens = 64, prompt = 32, threads = 0;
  bool blas = false;
  bool dummy = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") model_dir = next();
    else if (a == "--synth") synth = next();
    else if (a == "--quant") quant = next();
    else if (a == "--tokens") tokens = std::stoi(next());
    else if (a == "--prompt") prompt = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--blas-prefill") blas = true;
    else if (a == "--load-format") dummy = next() == "dummy";
    else {
      std::fprintf(stderr, "usage: %s (--model DIR | --synth 100m [--quant none|awq|gptq]) [--tokens N] "
                           "[--prompt N] [--threads N] [--blas-prefill] [--load-format auto|dummy]\n", argv[0]);
      return 2;
    }
  }
  std::string tmp_dir;
  if (model_dir.empty()) {
    if (synth != "100m") {
      std::fprintf(stderr, "give --model DIR or --synth 100m\n");
      return 2;
    }
    // ~110M parameters: 12 layers of hidden 768 / MLP 2048, vocab 16000.
    const tandem::SynthOptions o = tandem::bench::synth_100m_options(quant);
    tmp_dir = (std::filesystem::temp_directory_path() / ("tandem_bench_100m_" + quant)).string();
    model_dir = tmp_dir;
    auto t0 = Clock::now();
    tandem::Status s = tandem::write_synthetic_checkpoint(model_dir, o);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.to_string().c_str());
      return 1;
    }
    std::printf("wrote random model to %s in %.1f s\n", model_dir.c_str(), seconds(t0));
  }
  tandem::ModelRunnerOptions ro;
  ro.page_size = 16;
  ro.num_pages = (prompt + tokens) / ro.page_size + 2;
  ro.load.dummy = dummy;  // --model may then be a config.json alone
  auto t0 = Clock::now();
  auto runner = tandem::LocalModelRunner::create(tandem::make_cpu_backend(threads, blas), model_dir, ro);
  if (!runner.ok()) {
    std::fprintf(stderr, "%s\n", runner.status().to_string().c_str());
    return 1;
  }
  const double load_s = seconds(t0);
  const auto& cfg = (*runner)->config();
  std::vector<int32_t> ids(prompt);
  for (int i = 0; i < prompt; ++i) ids[i] = (i * 7919 + 13) % cfg.vocab_size;
  tandem::SamplingParams so;
  so.temperature = 0.0f;
  so.max_tokens = tokens;
  so.ignore_eos = true;
  // Best of 3 runs: the machine may be shared.
  std::optional<tandem::SingleGenerateResult> best;
  for (int rep = 0; rep < 3; ++rep) {
    auto r = tandem::generate_single(**runner, ids, so);  // one sequence through the engine
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().to_string().c_str());
      return 1;
    }
    if (!best || r->decode_seconds < best->decode_seconds) best = std::move(*r);
  }
  const tandem::SingleGenerateResult* r = &*best;
  const int nthreads = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  const double decode_tps = (r->output_ids.size() - 1) / r->decode_seconds;
  const double weight_bytes = static_cast<double>((*runner)->model().weight_bytes());
  // Per decode token every weight is read once, minus the embedding table
  // (one row); plus the KV cache of the average context.
  const double embed_bytes = static_cast<double>(cfg.vocab_size) * cfg.hidden_size *
                             tandem::dtype_size(cfg.torch_dtype);
  const double avg_ctx = prompt + tokens / 2.0;
  const double kv_bytes = avg_ctx * cfg.kv_bytes_per_token(tandem::DType::kF32);
  const double bytes_per_token = weight_bytes - embed_bytes + kv_bytes;
  const double achieved = bytes_per_token * decode_tps / 1e9;
  const double baseline = read_bandwidth_gbs(threads);
  std::printf("model            %s (%s, quant %s)\n", model_dir.c_str(), tandem::architecture_name(cfg.architecture),
              tandem::quant_method_name(cfg.quant.method));
  std::printf("threads          %d\n", nthreads);
  std::printf("load             %.2f s\n", load_s);
  std::printf("weights in RAM   %.1f MiB\n", weight_bytes / (1 << 20));
  std::printf("prefill          %d tokens in %.3f s (%.1f tokens/s, %s)\n", prompt, r->prefill_seconds,
              prompt / r->prefill_seconds, blas ? "OpenBLAS sgemm" : "batch-invariant streaming kernels");
  std::printf("decode           %zu tokens, %.2f tokens/s (%.2f ms/token)\n", r->output_ids.size() - 1, decode_tps,
              1000.0 / decode_tps);
  std::printf("bytes per token  %.1f MiB (weights less embeddings, plus KV)\n", bytes_per_token / (1 << 20));
  std::printf("achieved         %.2f GB/s\n", achieved);
  std::printf("read baseline    %.2f GB/s (same threads, 512 MiB buffer)\n", baseline);
  std::printf("ratio            %.0f%% of the measured read bandwidth\n", 100.0 * achieved / baseline);
  if (!tmp_dir.empty()) std::filesystem::remove_all(tmp_dir);
  return 0;
}
