// One /v1/completions or /v1/chat/completions request in flight: one engine
// request per prompt (each with n choices), events posted from the engine
// thread to the connection's strand, assembled into one JSON body or streamed
// as SSE chunks. A client that leaves, or a request timeout, aborts the engine
// requests; the job ends when every engine request has reported request_done.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/api.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/model_service.h"
#include "server/request_parse.h"

namespace tandem::server {

struct JobContext {
  std::string request_id;                  // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;                     // unix seconds
  std::string path;                        // the endpoint, for logs
  std::string peer;
  // Not owned: services live until ServerApp shuts down, which stops the I/O
  // threads (where jobs run) before destroying them. Owning it here would make
  // a cycle (engine -> sink -> job -> service -> engine) that keeps an engine
  // with unfinished requests alive past the I/O context.
  ModelService* service = nullptr;
  ModelMetrics* metrics = nullptr;
  std::chrono::steady_clock::time_point arrival;
};

// One prompt, tokenized, with its own sampling (max_tokens may differ per prompt).
struct PreparedPrompt {
  std::vector<int32_t> token_ids;
  SamplingParams sampling;
};

// Submits the prompts and answers on `exchange`. Call on the exchange's strand.
void start_generation(JobContext context, const GenerationSpec& spec, std::vector<PreparedPrompt> prompts,
                      std::shared_ptr<HttpExchange> exchange);

// SSE framing: "data: <payload>\n\n".
std::string sse_event(const std::string& payload);
inline const char* sse_done() { return "data: [DONE]\n\n"; }

// JSON text with invalid UTF-8 replaced (token pieces may split a character).
std::string dump_json(const nlohmann::json& j);

// Per-request log line at info (key=value text, or fields in JSON mode).
struct RequestLogRecord {
  std::string request_id, model, path, peer, outcome;
  int status = 200;
  int64_t prompt_tokens = 0, output_tokens = 0;
  double ttft_ms = -1, latency_ms = 0;
};
void log_request(const RequestLogRecord& record);

}  // namespace tandem::server
