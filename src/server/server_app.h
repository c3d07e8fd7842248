// The OpenAI-compatible application: routes HTTP requests to endpoints, checks
// the API key, loads the models (in the background, so /health says "starting"
// meanwhile), and drains on SIGTERM/SIGINT. `tandem serve` and the test server
// both run this; they differ only in the ModelServiceFactory.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "server/http_server.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/nvml.h"
#include "server/request_parse.h"
#include "server/server_config.h"

namespace tandem::server {

class ServerApp {
 public:
  ServerApp(ServerConfig config, ModelServiceFactory factory);
  ~ServerApp();
  ServerApp(const ServerApp&) = delete;
  ServerApp& operator=(const ServerApp&) = delete;

  // Binds the port (error: cannot listen), starts I/O and model loading.
  Status start();
  int port() const { return http_->port(); }
  // Blocks until SIGTERM/SIGINT (then drains) or until every model failed to
  // load. Returns the exit code: 0 after a drain, 1 when no model could load.
  int run_until_signal();

  // The HTTP entry point (public for tests that drive the app directly).
  void handle(HttpRequest&& request, std::shared_ptr<HttpExchange> exchange);

 private:
  void load_models();
  bool authorized(const HttpRequest& request) const;
  void reply_error(HttpExchange& ex, const ApiError& error);
  // Answers `error` and logs the request line (every refused request gets one).
  void refuse(const HttpRequest& request, HttpExchange& ex, const ApiError& error, const std::string& model,
              const char* outcome, const char* id_prefix = "req");
  void log_refused(const RefusedRequest& refused);  // 413/431/400 from the HTTP layer
  void handle_generation(HttpRequest&& request, std::shared_ptr<HttpExchange> ex, Endpoint endpoint);
  void handle_tokenize(const HttpRequest& request, HttpExchange& ex);
  void handle_detokenize(const HttpRequest& request, HttpExchange& ex);
  void handle_models(const HttpRequest& request, HttpExchange& ex);
  void handle_health(HttpExchange& ex);
  void handle_metrics(HttpExchange& ex);
  // The ready service of `model`, or the error to answer (404 / 503).
  std::shared_ptr<ModelService> find_service(const std::string& model, ModelSlot** slot, ApiError* error);
  std::string next_request_id(const char* prefix);
  void drain();

  ServerConfig config_;
  ModelServiceFactory factory_;
  RequestLimits limits_;
  ModelRegistry registry_;
  HttpMetrics http_metrics_;
  NvmlReader nvml_;
  std::atomic<uint64_t> request_counter_{0};
  std::atomic<int> num_loaded_{0};
  std::atomic<int> num_failed_{0};
  std::atomic<bool> loading_done_{false};
  std::thread loader_;
  std::unique_ptr<HttpServer> http_;
};

// `tandem serve` (and the test server): parses flags, loads --config, runs.
int serve_main(int argc, char** argv, const ModelServiceFactory& factory, const char* program_name);
// The same, with the factory made once the configuration is final (`tandem serve`:
// make_model_service_factory plans --gpu-budget there). An error ends the
// program: kResourceExhausted (the plan does not fit; its message is printed) exits 1, others 2.
using ModelServiceFactoryMaker = std::function<StatusOr<ModelServiceFactory>(const ServerConfig& config)>;
int serve_main(int argc, char** argv, const ModelServiceFactoryMaker& make_factory, const char* program_name);

}  // namespace tandem::server
