// `tandem bench` as a library call: plan the requests, run them at each rate,
// print the summary, write --json and the sweep chart.
#pragma once

#include <cstdio>
#include <vector>

#include "bench/options.h"
#include "bench/report.h"
#include "common/status.h"

namespace tandem::bench {

struct BenchOutput {
  std::FILE* out = stdout;     // summary tables
  std::FILE* status = stderr;  // progress and notes
  bool status_is_tty = false;
};

// Runs the whole benchmark. Errors are set-up failures (bad options, no
// tokenizer, unwritable --json); failed requests are measurements and land in
// the reports.
StatusOr<std::vector<RunReport>> run_bench(const BenchOptions& options, const BenchOutput& io);

}  // namespace tandem::bench
