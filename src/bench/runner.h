// Drives one run: requests arrive on their schedule, wait for a slot under
// --max-concurrency, stream on an io_context of a few threads, and land in one
// result per request. Progress goes to a sink the caller supplies.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bench/http.h"
#include "bench/prompts.h"
#include "bench/stats.h"

namespace tandem::bench {

struct RunConfig {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string target;         // /v1/completions or /v1/chat/completions (with any prefix)
  int max_concurrency = 0;    // 0: unlimited
  double timeout_s = 60;
  int threads = 2;
};

struct RunOutcome {
  std::vector<RequestResult> results;  // by request index
  double duration_s = 0;               // first arrival to last completion
};

// Called from the caller's thread about 10 times a second and once at the end.
struct ProgressState {
  int total = 0, completed = 0, failed = 0, in_flight = 0;
  double elapsed_s = 0;
  bool final = false;
};
using ProgressFn = std::function<void(const ProgressState&)>;

RunOutcome run_requests(const StreamTarget& target, const std::vector<PlannedRequest>& requests,
                        const std::vector<double>& arrival_s, const RunConfig& config, const ProgressFn& progress);

// A progress printer: a redrawn bar on a terminal, a line every ~10% otherwise.
// `label` prefixes each line (e.g. the rate of a sweep).
ProgressFn make_progress_printer(std::FILE* out, bool is_tty, std::string label);

}  // namespace tandem::bench
