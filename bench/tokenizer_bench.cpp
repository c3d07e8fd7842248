// Single-threaded encode throughput (MB/s of UTF-8 input) of Tandem's tokenizer.
// Usage: tandem_tokenizer_bench [--repeat N] TOKENIZER_DIR... -- TEXT_FILE...
// Each text is split at "\n\n" into chunks and encoded one chunk per call,
// without special tokens, exactly as scripts/gpu/bench_hf_tokenizers.py does;
// one warm-up pass, then the best of N timed passes.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

std::vector<std::string> chunks_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t next = text.find("\n\n", pos);
    out.push_back(text.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) break;
    pos = next + 2;
  }
  return out;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 5;
  std::vector<std::string> tokenizers, files;
  bool after_dashes = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
      repeat = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--")) {
      after_dashes = true;
    } else {
      (after_dashes ? files : tokenizers).push_back(argv[i]);
    }
  }
  if (tokenizers.empty() || files.empty()) {
    std::fprintf(stderr, "usage: %s [--repeat N] TOKENIZER_DIR... -- TEXT_FILE...\n", argv[0]);
    return 2;
  }
  // MB/s: wall clock; cpu MB/s: process CPU time (steadier on a shared machine).
  std::printf("%-14s %-10s %10s %10s %10s %10s\n", "tokenizer", "text", "MB", "tokens", "MB/s",
              "cpu MB/s");
  for (const auto& tpath : tokenizers) {
    auto tok = tandem::Tokenizer::load(tpath);
    if (!tok.ok()) {
      std::fprintf(stderr, "%s\n", tok.status().to_string().c_str());
      return 1;
    }
    for (const auto& fpath : files) {
      std::ifstream f(fpath, std::ios::binary);
      if (!f) {
        std::fprintf(stderr, "cannot open %s\n", fpath.c_str());
        return 1;
      }
      std::stringstream ss;
      ss << f.rdbuf();
      const std::string text = ss.str();
      const auto chunks = chunks_of(text);
      size_t bytes = 0;
      for (const auto& c : chunks) bytes += c.size();
      size_t num_tokens = 0;
      for (const auto& c : chunks) num_tokens += (*tok)->encode(c, false).size();  // warm-up
      double best = 1e30, best_cpu = 1e30;
      for (int r = 0; r < repeat; ++r) {
        const double c0 = cpu_seconds();
        const auto t0 = std::chrono::steady_clock::now();
        size_t n = 0;
        for (const auto& c : chunks) n += (*tok)->encode(c, false).size();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::min(best, s);
        best_cpu = std::min(best_cpu, cpu_seconds() - c0);
        if (n != num_tokens) {
          std::fprintf(stderr, "nondeterministic token count\n");
          return 1;
        }
      }
      std::printf("%-14s %-10s %10.3f %10zu %10.2f %10.2f\n",
                  std::filesystem::path(tpath).filename().c_str(),
                  std::filesystem::path(fpath).stem().c_str(), bytes / 1e6, num_tokens,
                  bytes / 1e6 / best, bytes / 1e6 / best_cpu);
    }
  }
  return 0;
}
