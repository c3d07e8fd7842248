#include "server_testing/echo_service.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "server_testing/byte_tokenizer.h"
#include "server_testing/chatml_renderer.h"
#include "server_testing/echo_engine.h"

namespace tandem::testing {
namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}
}  // namespace

StatusOr<std::unique_ptr<server::ModelService>> make_echo_service(const std::string& name, const std::string& path,
                                                                  const server::EngineOptions& options) {
  if (path != "echo") {
    return invalid_argument("model '" + name + "': the test server serves only the echo engine (DIR must be 'echo', got '" +
                            path + "')");
  }
  if (int ms = env_int("TANDEM_ECHO_LOAD_MS", 0); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  auto service = std::make_unique<server::ModelService>();
  service->name = name;
  service->path = path;
  service->tokenizer = std::make_unique<ByteTokenizer>();
  service->chat = std::make_unique<ChatMlRenderer>();
  EchoEngineOptions eo;
  if (options.max_model_len > 0) eo.max_model_len = options.max_model_len;
  if (options.max_num_seqs > 0) eo.max_num_seqs = options.max_num_seqs;
  if (options.max_queue > 0) eo.max_queue = options.max_queue;
  eo.step_us = env_int("TANDEM_ECHO_STEP_US", 2000);
  eo.num_pages = env_int("TANDEM_ECHO_PAGES", eo.num_pages);
  eo.eos_ids = {ByteTokenizer::kEos, ByteTokenizer::kImEnd};
  service->engine = std::make_unique<EchoEngine>(service->tokenizer.get(), eo);
  return service;
}

}  // namespace tandem::testing
