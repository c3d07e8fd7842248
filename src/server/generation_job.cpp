#include "server/generation_job.h"

#include <algorithm>
#include <cstdio>

#include "common/log.h"

namespace tandem::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* finish_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
    case FinishReason::kNone: return nullptr;
  }
  return nullptr;
}

json finish_json(FinishReason r) {
  const char* n = finish_name(r);
  return n ? json(n) : json(nullptr);
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

class GenerationJob : public std::enable_shared_from_this<GenerationJob> {
 public:
  GenerationJob(JobContext ctx, const GenerationSpec& spec, std::vector<PreparedPrompt> prompts,
                std::shared_ptr<HttpExchange> ex)
      : ctx_(std::move(ctx)),
        chat_(spec.endpoint == Endpoint::kChat),
        stream_(spec.stream),
        include_usage_(spec.include_usage),
        n_(spec.sampling.n),
        logprobs_(spec.sampling.logprobs),
        model_(spec.model),
        prompts_(std::move(prompts)),
        ex_(std::move(ex)) {
    choices_.resize(prompts_.size() * n_);
    reqs_.resize(prompts_.size());
  }

  void start() {
    auto self = shared_from_this();
    EngineClient& engine = *ctx_.service->engine;
    for (size_t i = 0; i < prompts_.size(); ++i) {
      GenerateRequest r;
      r.request_id = prompts_.size() == 1 ? ctx_.request_id : ctx_.request_id + "-" + std::to_string(i);
      reqs_[i].id = r.request_id;
      reqs_[i].prompt_tokens = static_cast<int>(prompts_[i].token_ids.size());
      r.prompt_token_ids = std::move(prompts_[i].token_ids);
      r.sampling = prompts_[i].sampling;
      r.sink = [self, i](RequestEvent&& ev) {
        auto shared_ev = std::make_shared<RequestEvent>(std::move(ev));
        self->ex_->post([self, i, shared_ev] { self->on_event(i, std::move(*shared_ev)); });
      };
      Status s = engine.submit(std::move(r));
      if (!s.ok()) {
        submit_error_ = api_error_from_status(s, chat_ ? "messages" : "prompt");
        if (s.code() == StatusCode::kResourceExhausted) outcome_override_ = Outcome::kQueueFull;
        else if (s.code() == StatusCode::kUnavailable) outcome_override_ = Outcome::kUnavailable;
        else if (s.code() == StatusCode::kInvalidArgument) outcome_override_ = Outcome::kRejected;
        else outcome_override_ = Outcome::kError;
        reqs_[i].done = true;
        for (size_t j = i + 1; j < reqs_.size(); ++j) reqs_[j].done = true;
        abort_all();
        if (all_done()) finish();
        return;
      }
      reqs_[i].submitted = true;
    }
    // Weak: the exchange must not keep the job alive (job -> exchange ->
    // callback -> job would leak both when the server stops with the job still
    // queued); the engine's sink holds the job while its requests run.
    std::weak_ptr<GenerationJob> weak = self;
    ex_->on_close([weak] {
      if (auto job = weak.lock()) {
        job->client_gone_ = true;
        job->abort_all();
      }
    });
    ex_->on_timeout([weak] {
      if (auto job = weak.lock()) {
        job->timed_out_ = true;
        job->abort_all();
      }
    });
    if (stream_) {
      ex_->start_stream("text/event-stream");
      if (chat_) {
        // First chunk of every choice carries the role, as OpenAI's does.
        for (size_t c = 0; c < choices_.size(); ++c) {
          json choice = {{"index", c}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                         {"logprobs", nullptr}, {"finish_reason", nullptr}};
          ex_->stream_write(sse_event(dump_json(chunk_envelope(json::array({choice})))));
        }
      }
    }
  }

 private:
  struct Choice {
    std::string text;
    FinishReason finish = FinishReason::kNone;
    int num_tokens = 0;
    size_t text_offset = 0;                   // completions logprobs: offset of the next token
    json lp = json::object();                 // accumulated logprobs (non-streaming)
  };
  struct EngineReq {
    std::string id;
    bool submitted = false;
    bool done = false;
    int prompt_tokens = 0;
    int cached_tokens = 0;
    int output_tokens = 0;
  };

  bool all_done() const {
    return std::all_of(reqs_.begin(), reqs_.end(), [](const EngineReq& r) { return r.done; });
  }

  void abort_all() {
    for (auto& r : reqs_) {
      if (r.submitted && !r.done) ctx_.service->engine->abort(r.id);
    }
  }

  json chunk_envelope(json choices) const {
    json j = {{"id", ctx_.request_id},
              {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
              {"created", ctx_.created},
              {"model", model_},
              {"choices", std::move(choices)}};
    if (include_usage_) j["usage"] = nullptr;
    return j;
  }

  std::string token_text(int32_t id) const {
    int32_t one[1] = {id};
    return ctx_.service->tokenizer->decode(std::span<const int32_t>(one, 1), /*skip_special_tokens=*/false);
  }

  // Logprobs of this event's tokens in the endpoint's format; `choice` keeps the text offset.
  json event_logprobs(const std::vector<TokenOutput>& tokens, Choice* choice) const {
    if (chat_) {
      json content = json::array();
      for (const auto& t : tokens) {
        auto entry = [&](int32_t id, float lp) {
          std::string s = token_text(id);
          json bytes = json::array();
          for (unsigned char b : s) bytes.push_back(b);
          return json{{"token", s}, {"logprob", lp}, {"bytes", bytes}};
        };
        json e = entry(t.token_id, t.logprob);
        json top = json::array();
        for (const auto& alt : t.top) top.push_back(entry(alt.token_id, alt.logprob));
        e["top_logprobs"] = top;
        content.push_back(std::move(e));
      }
      return json{{"content", content}};
    }
    json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
                {"text_offset", json::array()}};
    for (const auto& t : tokens) {
      std::string s = token_text(t.token_id);
      out["tokens"].push_back(s);
      out["token_logprobs"].push_back(t.logprob);
      json top = json::object();
      for (const auto& alt : t.top) {
        std::string key = token_text(alt.token_id);
        if (!top.contains(key)) top[key] = alt.logprob;
      }
      out["top_logprobs"].push_back(top);
      out["text_offset"].push_back(choice->text_offset);
      choice->text_offset += s.size();
    }
    return out;
  }

  static void append_logprobs(json* acc, const json& part, bool chat) {
    if (acc->empty()) {
      *acc = part;
      return;
    }
    if (chat) {
      for (const auto& e : part["content"]) (*acc)["content"].push_back(e);
    } else {
      for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
        for (const auto& e : part[k]) (*acc)[k].push_back(e);
      }
    }
  }

  void on_event(size_t req_index, RequestEvent&& ev) {
    if (req_index >= reqs_.size() || reqs_[req_index].done) return;
    EngineReq& req = reqs_[req_index];
    const auto now = Clock::now();
    if (!ev.tokens.empty() && !first_token_) first_token_ = now;
    const size_t c = req_index * n_ + static_cast<size_t>(ev.choice_index);
    if (ev.choice_index >= 0 && ev.choice_index < n_ && c < choices_.size()) {
      Choice& choice = choices_[c];
      choice.text += ev.text;
      choice.num_tokens += static_cast<int>(ev.tokens.size());
      if (ev.finish != FinishReason::kNone) choice.finish = ev.finish;
      if (ev.finish == FinishReason::kError && error_message_.empty()) {
        error_message_ = ev.error.empty() ? "the engine failed this request" : ev.error;
      }
      json lp = nullptr;
      if (logprobs_ >= 0 && !ev.tokens.empty()) {
        lp = event_logprobs(ev.tokens, &choice);
        if (!stream_) append_logprobs(&choice.lp, lp, chat_);
      }
      const bool finished = ev.finish == FinishReason::kStop || ev.finish == FinishReason::kLength;
      if (stream_ && !ex_->closed() && (!ev.text.empty() || finished || !lp.is_null())) {
        json ch;
        if (chat_) {
          json delta = ev.text.empty() && lp.is_null() ? json::object() : json{{"content", ev.text}};
          ch = {{"index", c}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", finish_json(finished ? ev.finish : FinishReason::kNone)}};
        } else {
          ch = {{"index", c}, {"text", ev.text}, {"logprobs", lp}, {"finish_reason", finish_json(finished ? ev.finish : FinishReason::kNone)}};
        }
        ex_->stream_write(sse_event(dump_json(chunk_envelope(json::array({ch})))));
      }
    }
    if (ev.request_done) {
      req.done = true;
      req.prompt_tokens = ev.num_prompt_tokens > 0 ? ev.num_prompt_tokens : req.prompt_tokens;
      req.cached_tokens = ev.num_cached_prompt_tokens;
      req.output_tokens = ev.num_output_tokens;
      if (all_done()) finish();
    }
  }

  json usage_json() const {
    int64_t prompt = 0, output = 0, cached = 0;
    for (const auto& r : reqs_) {
      prompt += r.prompt_tokens;
      output += r.output_tokens;
      cached += r.cached_tokens;
    }
    json u = {{"prompt_tokens", prompt}, {"completion_tokens", output}, {"total_tokens", prompt + output}};
    if (cached > 0) u["prompt_tokens_details"] = {{"cached_tokens", cached}};
    return u;
  }

  Outcome outcome() const {
    if (outcome_override_) return *outcome_override_;
    if (client_gone_) return Outcome::kAborted;
    if (timed_out_) return Outcome::kTimeout;
    bool length = false;
    for (const auto& c : choices_) {
      if (c.finish == FinishReason::kError || !error_message_.empty()) return Outcome::kError;
      if (c.finish == FinishReason::kAbort || c.finish == FinishReason::kNone) return Outcome::kAborted;
      if (c.finish == FinishReason::kLength) length = true;
    }
    return length ? Outcome::kLength : Outcome::kStop;
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    const auto end = Clock::now();
    const Outcome out = outcome();
    int status = 200;
    ApiError error;
    bool failed = false;
    if (submit_error_) {
      error = *submit_error_;
      failed = true;
    } else if (out == Outcome::kTimeout) {
      error = api_error_from_status(Status(StatusCode::kDeadlineExceeded, "the request timed out"));
      failed = true;
    } else if (out == Outcome::kError) {
      error = api_error_from_status(internal_error("model '" + model_ + "': " + error_message_));
      failed = true;
    } else if (out == Outcome::kAborted && !client_gone_) {
      error = api_error_from_status(unavailable("the request was aborted (server shutting down)"));
      failed = true;
    }
    if (failed) status = error.http_status;
    if (client_gone_) status = 499;  // nginx's "client closed request", for the log only

    // Metrics and the log line.
    int64_t prompt = 0, output = 0;
    for (const auto& r : reqs_) {
      prompt += r.prompt_tokens;
      output += r.output_tokens;
    }
    ModelMetrics& m = *ctx_.metrics;
    m.count_request(out);
    m.add_tokens(submit_error_ ? 0 : prompt, output);
    if (!submit_error_) {
      const double e2e = ms_between(ctx_.arrival, end) / 1000.0;
      m.e2e_s.observe(e2e);
      if (first_token_) {
        const double ttft = ms_between(ctx_.arrival, *first_token_) / 1000.0;
        m.ttft_s.observe(ttft);
        int longest = 0;
        for (const auto& c : choices_) longest = std::max(longest, c.num_tokens);
        if (longest > 1) m.tpot_s.observe((e2e - ttft) / (longest - 1));
      }
    }
    RequestLogRecord rec;
    rec.request_id = ctx_.request_id;
    rec.model = model_;
    rec.path = ctx_.path;
    rec.peer = ctx_.peer;
    rec.outcome = outcome_name(out);
    rec.status = status;
    rec.prompt_tokens = prompt;
    rec.output_tokens = output;
    rec.ttft_ms = first_token_ ? ms_between(ctx_.arrival, *first_token_) : -1;
    rec.latency_ms = ms_between(ctx_.arrival, end);
    log_request(rec);

    if (stream_ && !submit_error_) {
      if (failed) {
        ex_->stream_write(sse_event(error.body()));
      } else if (include_usage_) {
        json last = chunk_envelope(json::array());
        last["usage"] = usage_json();
        ex_->stream_write(sse_event(dump_json(last)));
      }
      ex_->stream_write(sse_done());
      ex_->end_stream();
    } else if (failed) {
      HttpHeaders extra;
      if (error.retry_after_s > 0) extra.emplace_back("Retry-After", std::to_string(error.retry_after_s));
      ex_->respond(error.http_status, "application/json", error.body(), extra);
    } else {
      json choices = json::array();
      for (size_t c = 0; c < choices_.size(); ++c) {
        const Choice& ch = choices_[c];
        json lp = logprobs_ >= 0 ? (ch.lp.empty() ? (chat_ ? json{{"content", json::array()}} : json::object()) : ch.lp)
                                 : json(nullptr);
        if (chat_) {
          choices.push_back({{"index", c},
                             {"message", {{"role", "assistant"}, {"content", ch.text}}},
                             {"logprobs", lp},
                             {"finish_reason", finish_json(ch.finish)}});
        } else {
          choices.push_back(
              {{"index", c}, {"text", ch.text}, {"logprobs", lp}, {"finish_reason", finish_json(ch.finish)}});
        }
      }
      json body = {{"id", ctx_.request_id},
                   {"object", chat_ ? "chat.completion" : "text_completion"},
                   {"created", ctx_.created},
                   {"model", model_},
                   {"choices", choices},
                   {"usage", usage_json()}};
      ex_->respond(200, "application/json", dump_json(body));
    }
    // The exchange outlives the job's work: drop its callbacks.
    ex_->on_close(nullptr);
    ex_->on_timeout(nullptr);
  }

  JobContext ctx_;
  const bool chat_;
  const bool stream_;
  const bool include_usage_;
  const int n_;
  const int logprobs_;
  const std::string model_;
  std::vector<PreparedPrompt> prompts_;
  std::shared_ptr<HttpExchange> ex_;
  std::vector<Choice> choices_;   // [num_prompts * n], choice index = prompt * n + k
  std::vector<EngineReq> reqs_;   // [num_prompts]
  std::optional<Clock::time_point> first_token_;
  std::optional<ApiError> submit_error_;
  std::optional<Outcome> outcome_override_;
  std::string error_message_;
  bool client_gone_ = false;
  bool timed_out_ = false;
  bool finished_ = false;
};

}  // namespace

std::string sse_event(const std::string& payload) {
  std::string out;
  out.reserve(payload.size() + 8);
  out += "data: ";
  out += payload;
  out += "\n\n";
  return out;
}

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void log_request(const RequestLogRecord& r) {
  if (log_level() > LogLevel::kInfo) return;
  char timing[96];
  std::snprintf(timing, sizeof timing, "ttft_ms=%.1f latency_ms=%.1f", r.ttft_ms, r.latency_ms);
  std::string text = "request id=" + r.request_id + " model=" + r.model + " path=" + r.path +
                     " status=" + std::to_string(r.status) + " outcome=" + r.outcome +
                     " prompt_tokens=" + std::to_string(r.prompt_tokens) +
                     " output_tokens=" + std::to_string(r.output_tokens) + " " + timing + " peer=" + r.peer;
  std::string fields;
  if (log_json()) {
    nlohmann::json f = {{"event", "request"},      {"id", r.request_id},
                        {"model", r.model},        {"path", r.path},
                        {"status", r.status},      {"outcome", r.outcome},
                        {"prompt_tokens", r.prompt_tokens}, {"output_tokens", r.output_tokens},
                        {"latency_ms", r.latency_ms}, {"peer", r.peer}};
    if (r.ttft_ms >= 0) f["ttft_ms"] = r.ttft_ms;
    fields = dump_json(f);
  }
  log_line_fields(LogLevel::kInfo, text, fields);
}

void start_generation(JobContext context, const GenerationSpec& spec, std::vector<PreparedPrompt> prompts,
                      std::shared_ptr<HttpExchange> exchange) {
  auto job = std::make_shared<GenerationJob>(std::move(context), spec, std::move(prompts), std::move(exchange));
  job->start();
}

}  // namespace tandem::server
