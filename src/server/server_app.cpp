#include "server/server_app.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "common/log.h"
#include "server/generation_job.h"

namespace tandem::server {
namespace {

using nlohmann::json;

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Compares without an early exit, so timing does not reveal the key's prefix.
bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || b.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

ApiError context_error(const std::string& param, int max_len, int prompt_len, int max_tokens) {
  std::string msg = "This model's maximum context length is " + std::to_string(max_len) + " tokens. However, ";
  if (max_tokens < 0) {
    msg += "your prompt has " + std::to_string(prompt_len) +
           " tokens, which leaves no room for a completion. Please reduce the length of the prompt.";
  } else {
    msg += "you requested " + std::to_string(prompt_len + max_tokens) + " tokens (" + std::to_string(prompt_len) +
           " in the prompt, " + std::to_string(max_tokens) + " for the completion). Please reduce the length of the " +
           "prompt or of max_tokens.";
  }
  ApiError e = bad_request(msg, param);
  e.code = "context_length_exceeded";
  return e;
}

}  // namespace

ServerApp::ServerApp(ServerConfig config, ModelServiceFactory factory)
    : config_(std::move(config)), factory_(std::move(factory)) {
  for (const auto& m : config_.models) registry_.add(m.name, m.path, m.engine);
  std::random_device rd;
  request_counter_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  HttpServerOptions o;
  o.host = config_.host;
  o.port = config_.port;
  o.io_threads = config_.io_threads;
  o.max_body_bytes = config_.max_body_bytes;
  o.request_timeout_s = config_.request_timeout_s;
  o.idle_timeout_s = config_.idle_timeout_s;
  o.on_refused = [this](const RefusedRequest& refused) { log_refused(refused); };
  http_ = std::make_unique<HttpServer>(
      o, [this](HttpRequest&& r, std::shared_ptr<HttpExchange> ex) { handle(std::move(r), std::move(ex)); },
      &http_metrics_);
}

ServerApp::~ServerApp() {
  // 1. No handler runs after this (jobs only run on the I/O threads).
  http_->stop();
  if (loader_.joinable()) loader_.join();
  // 2. Engines stop; unfinished requests end as aborted, their sinks post into
  //    the stopped I/O context, which only queues.
  for (const auto& slot : registry_.slots()) slot->take_service().reset();
  // 3. The I/O context goes last, dropping queued handlers, jobs and connections.
  http_.reset();
}

Status ServerApp::start() {
  RETURN_IF_ERROR(http_->listen());
  http_->start();
  TANDEM_LOG(kInfo) << "listening on http://" << config_.host << ":" << http_->port() << " (" << config_.io_threads
                    << " I/O threads; models: " << registry_.names() << "; "
                    << (config_.api_key.empty() ? "no API key" : "API key required") << ")"
                    << (nvml_.available() ? "; GPU metrics: " + nvml_.summary() + " via NVML"
                                          : "; GPU metrics off: " + nvml_.why_unavailable());
  loader_ = std::thread([this] { load_models(); });
  return ok_status();
}

void ServerApp::load_models() {
  for (const auto& slot : registry_.slots()) {
    const auto t0 = std::chrono::steady_clock::now();
    auto service = factory_(slot->name(), slot->path(), slot->options());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!service.ok()) {
      TANDEM_LOG(kError) << "model '" << slot->name() << "' failed to load: " << service.status().message();
      slot->set_failed(service.status().message());
      num_failed_.fetch_add(1);
      continue;
    }
    std::shared_ptr<ModelService> shared(std::move(service).value());
    TANDEM_LOG(kInfo) << "model '" << slot->name() << "' ready (" << slot->path()
                      << ", max_model_len=" << shared->engine->max_model_len() << ", loaded in " << s << " s)";
    slot->set_ready(std::move(shared));
    num_loaded_.fetch_add(1);
  }
  loading_done_ = true;
}

int ServerApp::run_until_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  timespec tick{0, 100 * 1000 * 1000};
  while (true) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      TANDEM_LOG(kInfo) << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ": draining (up to " << config_.drain_timeout_s
                        << " s for " << http_->num_active() << " running requests)";
      drain();
      return 0;
    }
    if (loading_done_ && num_loaded_ == 0) {
      TANDEM_LOG(kError) << "no model could be loaded; exiting";
      return 1;
    }
  }
}

void ServerApp::drain() {
  http_->set_draining();
  http_->stop_accepting();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(config_.drain_timeout_s * 1000));
  while (http_->num_active() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (http_->num_active() > 0) {
    TANDEM_LOG(kWarning) << "drain timeout: closing " << http_->num_active() << " unfinished requests";
  } else {
    TANDEM_LOG(kInfo) << "drained; exiting";
  }
  http_->stop();
}

bool ServerApp::authorized(const HttpRequest& r) const {
  if (config_.api_key.empty()) return true;
  static const std::string kBearer = "Bearer ";
  if (r.authorization.compare(0, kBearer.size(), kBearer) != 0) return false;
  return constant_time_equal(r.authorization.substr(kBearer.size()), config_.api_key);
}

void ServerApp::reply_error(HttpExchange& ex, const ApiError& error) {
  HttpHeaders extra;
  if (error.retry_after_s > 0) extra.emplace_back("Retry-After", std::to_string(error.retry_after_s));
  if (error.http_status == 401) extra.emplace_back("WWW-Authenticate", "Bearer");
  ex.respond(error.http_status, "application/json", error.body(), extra);
}

void ServerApp::refuse(const HttpRequest& r, HttpExchange& ex, const ApiError& e, const std::string& model,
                       const char* outcome, const char* id_prefix) {
  RequestLogRecord rec;
  rec.request_id = next_request_id(id_prefix);
  rec.model = model.empty() ? "-" : model;
  rec.path = r.path;
  rec.peer = r.peer;
  rec.outcome = outcome;
  rec.status = e.http_status;
  rec.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r.arrival).count();
  log_request(rec);
  reply_error(ex, e);
}

void ServerApp::log_refused(const RefusedRequest& refused) {
  RequestLogRecord rec;
  rec.request_id = next_request_id("req");
  rec.model = "-";
  rec.path = refused.path.empty() ? "-" : refused.path;
  rec.peer = refused.peer;
  rec.outcome = refused.outcome;
  rec.status = refused.status;
  rec.latency_ms = refused.latency_ms;
  log_request(rec);
}

std::string ServerApp::next_request_id(const char* prefix) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s-%016llx", prefix,
                static_cast<unsigned long long>(request_counter_.fetch_add(0x9E3779B97F4A7C15ULL)));
  return buf;
}

void ServerApp::handle(HttpRequest&& r, std::shared_ptr<HttpExchange> ex) {
  if (r.arrival == std::chrono::steady_clock::time_point{}) r.arrival = std::chrono::steady_clock::now();
  const std::string& p = r.path;
  const bool open = (p == "/health" || p == "/metrics") && !config_.auth_health_metrics;
  if (!open && !authorized(r)) {
    ApiError e;
    e.http_status = 401;
    e.type = "authentication_error";
    e.code = "invalid_api_key";
    e.message = r.authorization.empty() ? "missing API key: send 'Authorization: Bearer <key>'"
                                        : "invalid API key";
    return refuse(r, *ex, e, "", "unauthorized");
  }
  auto method_is = [&](const char* m) {
    if (r.method == m) return true;
    ApiError e;
    e.http_status = 405;
    e.message = "method " + r.method + " is not allowed on " + p + " (use " + m + ")";
    refuse(r, *ex, e, "", "method_not_allowed");
    return false;
  };
  if (p == "/v1/completions") {
    if (method_is("POST")) handle_generation(std::move(r), ex, Endpoint::kCompletions);
  } else if (p == "/v1/chat/completions") {
    if (method_is("POST")) handle_generation(std::move(r), ex, Endpoint::kChat);
  } else if (p == "/tokenize") {
    if (method_is("POST")) handle_tokenize(r, *ex);
  } else if (p == "/detokenize") {
    if (method_is("POST")) handle_detokenize(r, *ex);
  } else if (p == "/v1/models" || p.rfind("/v1/models/", 0) == 0) {
    if (method_is("GET")) handle_models(r, *ex);
  } else if (p == "/health") {
    if (method_is("GET")) handle_health(*ex);
  } else if (p == "/metrics") {
    if (method_is("GET")) handle_metrics(*ex);
  } else {
    ApiError e;
    e.http_status = 404;
    e.message = "no route for " + r.method + " " + p;
    refuse(r, *ex, e, "", "no_route");
  }
}

std::shared_ptr<ModelService> ServerApp::find_service(const std::string& model, ModelSlot** slot_out,
                                                      ApiError* error) {
  ModelSlot* slot = registry_.find(model);
  if (!slot) {
    error->http_status = 404;
    error->code = "model_not_found";
    error->param = "model";
    error->message = "The model '" + model + "' does not exist. Served models: " + registry_.names();
    return nullptr;
  }
  *slot_out = slot;
  if (http_->draining()) {
    *error = api_error_from_status(unavailable("the server is shutting down"));
    return nullptr;
  }
  std::string detail;
  std::string state = slot->state(&detail);
  if (state != "ready") {
    *error = api_error_from_status(
        unavailable("model '" + model + "' is " + state + (detail.empty() ? std::string() : ": " + detail)));
    return nullptr;
  }
  return slot->service();
}

void ServerApp::handle_generation(HttpRequest&& r, std::shared_ptr<HttpExchange> ex, Endpoint endpoint) {
  const bool chat = endpoint == Endpoint::kChat;
  const auto arrival = r.arrival;
  // Refused requests get their log line here; accepted ones when their job ends.
  auto refuse = [&](const ApiError& e, const std::string& model, const char* outcome) {
    this->refuse(r, *ex, e, model, outcome, chat ? "chatcmpl" : "cmpl");
  };
  auto parsed = chat ? parse_chat_request(r.body, limits_) : parse_completion_request(r.body, limits_);
  if (!parsed.ok()) return refuse(parsed.error(), body_model_field(r.body, limits_), "invalid");
  GenerationSpec& spec = parsed.value();
  ModelSlot* slot = nullptr;
  ApiError error;
  std::shared_ptr<ModelService> service = find_service(spec.model, &slot, &error);
  if (!service) {
    if (slot) slot->metrics().count_request(Outcome::kUnavailable);
    return refuse(error, spec.model, slot ? "unavailable" : "unknown_model");
  }
  auto reject = [&](const ApiError& e) {
    slot->metrics().count_request(Outcome::kRejected);
    refuse(e, spec.model, "rejected");
  };

  // Prompts as token ids.
  std::vector<std::vector<int32_t>> prompts;
  const int32_t vocab = service->tokenizer->vocab_size();
  if (chat) {
    if (!service->chat) {
      return reject(bad_request("model '" + spec.model + "' has no chat template; use /v1/completions", "messages"));
    }
    auto text = service->chat->render(spec.messages, spec.add_generation_prompt);
    if (!text.ok()) return reject(bad_request("chat template: " + text.status().message(), "messages"));
    prompts.push_back(service->tokenizer->encode(*text, spec.add_special_tokens));
  } else {
    for (size_t i = 0; i < spec.prompts.size(); ++i) {
      const PromptInput& in = spec.prompts[i];
      if (!in.is_tokens) {
        prompts.push_back(service->tokenizer->encode(in.text, spec.add_special_tokens));
        continue;
      }
      for (size_t j = 0; j < in.token_ids.size(); ++j) {
        if (in.token_ids[j] >= vocab) {
          return reject(bad_request("token id " + std::to_string(in.token_ids[j]) + " in 'prompt' is out of range: "
                                    "the vocabulary has " + std::to_string(vocab) + " tokens", "prompt"));
        }
      }
      prompts.push_back(in.token_ids);
    }
  }
  for (int32_t id : spec.sampling.stop_token_ids) {
    if (id >= vocab) {
      return reject(bad_request("token id " + std::to_string(id) + " in 'stop_token_ids' is out of range: the "
                                "vocabulary has " + std::to_string(vocab) + " tokens", "stop_token_ids"));
    }
  }
  // Context length: prompt + max_tokens must fit.
  const int max_len = service->engine->max_model_len();
  const char* prompt_param = chat ? "messages" : "prompt";
  std::vector<PreparedPrompt> prepared;
  prepared.reserve(prompts.size());
  for (auto& ids : prompts) {
    const int len = static_cast<int>(ids.size());
    if (len == 0) return reject(bad_request("the prompt is empty (0 tokens)", prompt_param));
    if (len >= max_len) return reject(context_error(prompt_param, max_len, len, -1));
    PreparedPrompt pp;
    pp.sampling = spec.sampling;
    if (spec.max_tokens_given) {
      if (static_cast<int64_t>(len) + spec.sampling.max_tokens > max_len) {
        return reject(context_error(spec.sampling.max_tokens > 0 ? "max_tokens" : prompt_param, max_len, len,
                                    spec.sampling.max_tokens));
      }
    } else {
      pp.sampling.max_tokens = chat ? max_len - len : std::min(spec.sampling.max_tokens, max_len - len);
    }
    if (pp.sampling.min_tokens > pp.sampling.max_tokens) pp.sampling.min_tokens = pp.sampling.max_tokens;
    pp.token_ids = std::move(ids);
    prepared.push_back(std::move(pp));
  }

  JobContext ctx;
  ctx.request_id = next_request_id(chat ? "chatcmpl" : "cmpl");
  ctx.created = unix_now();
  ctx.path = r.path;
  ctx.peer = r.peer;
  ctx.service = service.get();
  ctx.metrics = &slot->metrics();
  ctx.arrival = arrival;
  start_generation(std::move(ctx), spec, std::move(prepared), std::move(ex));
}

void ServerApp::handle_tokenize(const HttpRequest& r, HttpExchange& ex) {
  auto parsed = parse_tokenize_request(r.body, limits_);
  if (!parsed.ok()) return refuse(r, ex, parsed.error(), body_model_field(r.body, limits_), "invalid");
  const TokenizeSpec& spec = parsed.value();
  ModelSlot* slot = nullptr;
  ApiError error;
  auto service = find_service(spec.model, &slot, &error);
  if (!service) return refuse(r, ex, error, spec.model, slot ? "unavailable" : "unknown_model");
  std::string text = spec.prompt;
  if (spec.is_chat) {
    if (!service->chat) {
      return refuse(r, ex, bad_request("model '" + spec.model + "' has no chat template", "messages"), spec.model,
                    "rejected");
    }
    auto rendered = service->chat->render(spec.messages, spec.add_generation_prompt);
    if (!rendered.ok()) {
      return refuse(r, ex, bad_request("chat template: " + rendered.status().message(), "messages"), spec.model,
                    "rejected");
    }
    text = *rendered;
  }
  std::vector<int32_t> ids = service->tokenizer->encode(text, spec.add_special_tokens);
  json body = {{"count", ids.size()}, {"max_model_len", service->engine->max_model_len()}, {"tokens", ids}};
  if (spec.return_token_strs) {
    json strs = json::array();
    for (int32_t id : ids) strs.push_back(service->tokenizer->id_to_token(id));
    body["token_strs"] = strs;
  }
  ex.respond(200, "application/json", dump_json(body));
}

void ServerApp::handle_detokenize(const HttpRequest& r, HttpExchange& ex) {
  auto parsed = parse_detokenize_request(r.body, limits_);
  if (!parsed.ok()) return refuse(r, ex, parsed.error(), body_model_field(r.body, limits_), "invalid");
  const DetokenizeSpec& spec = parsed.value();
  ModelSlot* slot = nullptr;
  ApiError error;
  auto service = find_service(spec.model, &slot, &error);
  if (!service) return refuse(r, ex, error, spec.model, slot ? "unavailable" : "unknown_model");
  const int32_t vocab = service->tokenizer->vocab_size();
  for (int32_t id : spec.tokens) {
    if (id >= vocab) {
      return refuse(r, ex, bad_request("token id " + std::to_string(id) + " in 'tokens' is out of range: the "
                                       "vocabulary has " + std::to_string(vocab) + " tokens", "tokens"),
                    spec.model, "rejected");
    }
  }
  std::string text = service->tokenizer->decode(spec.tokens, /*skip_special_tokens=*/false);
  ex.respond(200, "application/json", dump_json(json{{"prompt", text}}));
}

void ServerApp::handle_models(const HttpRequest& r, HttpExchange& ex) {
  auto card = [&](const ModelSlot& slot) {
    json m = {{"id", slot.name()}, {"object", "model"}, {"created", unix_now()}, {"owned_by", "tandem"},
              {"root", slot.path()}, {"parent", nullptr}};
    auto service = slot.service();
    if (service) m["max_model_len"] = service->engine->max_model_len();
    else if (slot.options().max_model_len > 0) m["max_model_len"] = slot.options().max_model_len;
    else m["max_model_len"] = nullptr;
    m["status"] = slot.state();
    return m;
  };
  const std::string prefix = "/v1/models/";
  if (r.path.rfind(prefix, 0) == 0) {
    std::string name = r.path.substr(prefix.size());
    ModelSlot* slot = registry_.find(name);
    if (!slot) {
      ApiError e;
      e.http_status = 404;
      e.code = "model_not_found";
      e.param = "model";
      e.message = "The model '" + name + "' does not exist. Served models: " + registry_.names();
      return refuse(r, ex, e, name, "unknown_model");
    }
    return ex.respond(200, "application/json", dump_json(card(*slot)));
  }
  json data = json::array();
  for (const auto& slot : registry_.slots()) data.push_back(card(*slot));
  ex.respond(200, "application/json", dump_json(json{{"object", "list"}, {"data", data}}));
}

void ServerApp::handle_health(HttpExchange& ex) {
  json models = json::array();
  int ready = 0, starting = 0;
  for (const auto& slot : registry_.slots()) {
    std::string detail;
    std::string state = slot->state(&detail);
    json m = {{"name", slot->name()}, {"state", state}};
    if (!detail.empty()) m["detail"] = detail;
    if (auto service = slot->service()) m["max_model_len"] = service->engine->max_model_len();
    models.push_back(m);
    if (state == "ready") ++ready;
    if (state == "starting") ++starting;
  }
  std::string status;
  if (http_->draining()) status = "draining";
  else if (ready == static_cast<int>(registry_.slots().size())) status = "ok";
  else if (starting > 0) status = "starting";
  else if (ready > 0) status = "degraded";
  else status = "unavailable";
  const int code = (status == "ok" || status == "degraded") ? 200 : 503;
  ex.respond(code, "application/json", dump_json(json{{"status", status}, {"models", models}}));
}

void ServerApp::handle_metrics(HttpExchange& ex) {
  std::vector<ModelSnapshot> snaps;
  for (const auto& slot : registry_.slots()) {
    ModelSnapshot s;
    s.name = slot->name();
    s.state = slot->state();
    s.metrics = &slot->metrics();
    if (auto service = slot->service()) {
      s.stats = service->engine->stats();
      s.max_model_len = service->engine->max_model_len();
    }
    snaps.push_back(std::move(s));
  }
  std::string text =
      MetricsRenderer::render(snaps, http_metrics_, read_process_stats(), nvml_.read(), http_->draining());
  ex.respond(200, "text/plain; version=0.0.4; charset=utf-8", std::move(text));
}

}  // namespace tandem::server
