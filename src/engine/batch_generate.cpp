#include "engine/batch_generate.h"

#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>

namespace tandem {

StatusOr<std::vector<BatchResult>> generate_batch(EngineClient& engine,
                                                  const std::vector<std::vector<int32_t>>& prompts,
                                                  const SamplingParams& params) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    size_t num_done = 0;
  };
  auto shared = std::make_shared<Shared>();
  std::vector<BatchResult> results(prompts.size());
  for (auto& r : results) {
    r.tokens.resize(params.n);
    r.text.resize(params.n);
    r.finish.assign(params.n, FinishReason::kNone);
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerateRequest req;
    req.request_id = "p" + std::to_string(i);
    req.prompt_token_ids = prompts[i];
    req.sampling = params;
    BatchResult* out = &results[i];
    req.sink = [shared, out](RequestEvent&& ev) {
      std::lock_guard<std::mutex> lock(shared->mu);
      size_t c = static_cast<size_t>(ev.choice_index);
      if (c >= out->tokens.size()) return;
      for (auto& t : ev.tokens) out->tokens[c].push_back(std::move(t));
      out->text[c] += ev.text;
      if (ev.finish != FinishReason::kNone) out->finish[c] = ev.finish;
      if (!ev.error.empty()) out->error = ev.error;
      if (ev.request_done) {
        out->num_prompt_tokens = ev.num_prompt_tokens;
        out->num_cached_prompt_tokens = ev.num_cached_prompt_tokens;
        out->num_output_tokens = ev.num_output_tokens;
        ++shared->num_done;
        shared->cv.notify_all();
      }
    };
    Status st = engine.submit(std::move(req));
    if (!st.ok()) {
      for (size_t j = 0; j < i; ++j) engine.abort("p" + std::to_string(j));
      std::unique_lock<std::mutex> lock(shared->mu);
      shared->cv.wait(lock, [&] { return shared->num_done == i; });
      return Status(st.code(), "prompt " + std::to_string(i) + ": " + st.message());
    }
  }
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->num_done == prompts.size(); });
  return results;
}

StatusOr<std::vector<std::vector<int32_t>>> parse_prompt_ids(std::string_view text, const std::string& file_name) {
  std::vector<std::vector<int32_t>> prompts;
  int blank_run = 0;  // blank lines seen since the last prompt
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    for (char& ch : line) {
      if (ch == ',' || ch == '\t' || ch == '\r') ch = ' ';
    }
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && line[i] == ' ') ++i;
      if (i == line.size()) break;
      size_t j = line.find(' ', i);
      if (j == std::string::npos) j = line.size();
      std::string tok = line.substr(i, j - i);
      i = j;
      errno = 0;
      char* stop = nullptr;
      long v = std::strtol(tok.c_str(), &stop, 10);
      if (stop == tok.c_str() || *stop != '\0' || errno != 0 || v < 0 || v > INT32_MAX)
        return invalid_argument(file_name + ":" + std::to_string(line_no) + ": '" + tok + "' is not a token id");
      ids.push_back(static_cast<int32_t>(v));
    }
    if (ids.empty()) {
      ++blank_run;
      continue;
    }
    if (blank_run > 0)
      return invalid_argument(file_name + ":" + std::to_string(line_no - blank_run) +
                              ": empty line (one prompt of token ids per line)");
    prompts.push_back(std::move(ids));
  }
  if (prompts.empty()) return invalid_argument(file_name + ": no prompts (one line of token ids per prompt)");
  return prompts;
}

}  // namespace tandem
