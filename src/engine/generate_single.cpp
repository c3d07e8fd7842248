#include "engine/generate_single.h"

#include <chrono>

#include "engine/engine.h"

namespace tandem {

StatusOr<SingleGenerateResult> generate_single(ModelRunner& runner, const std::vector<int32_t>& prompt_ids,
                                               const SamplingParams& params, const SingleGenerateOptions& options) {
  if (prompt_ids.empty()) return invalid_argument("the prompt is empty");
  EngineConfig ec;
  ec.cache.page_size = runner.page_size();
  ec.cache.sliding_window = options.sliding_window;
  ec.eos_token_ids = options.eos_token_ids;
  ec.scheduler.max_num_seqs = 1;
  ASSIGN_OR_RETURN(auto engine, Engine::create(ec, &runner, options.decoder));

  using Clock = std::chrono::steady_clock;
  SingleGenerateResult result;
  std::string error;
  const auto t0 = Clock::now();
  Clock::time_point first{}, last{};
  GenerateRequest req;
  req.request_id = "single";
  req.prompt_token_ids = prompt_ids;
  req.sampling = params;
  req.sink = [&](RequestEvent&& ev) {
    if (ev.choice_index != 0) return;
    if (!ev.tokens.empty()) {
      last = Clock::now();
      if (result.output_ids.empty()) first = last;
      for (const TokenOutput& t : ev.tokens) result.output_ids.push_back(t.token_id);
    }
    result.text += ev.text;
    if (ev.finish != FinishReason::kNone) result.finish = ev.finish;
    if (!ev.error.empty()) error = ev.error;
    if (options.on_event) options.on_event(ev);
  };
  RETURN_IF_ERROR(engine->add_request(std::move(req)));
  while (engine->has_work()) RETURN_IF_ERROR(engine->step());
  if (!error.empty()) return internal_error(error);
  if (!result.output_ids.empty()) {
    result.prefill_seconds = std::chrono::duration<double>(first - t0).count();
    result.decode_seconds = std::chrono::duration<double>(last - first).count();
  }
  return result;
}

}  // namespace tandem
