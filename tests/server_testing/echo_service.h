// The ModelServiceFactory of server tests: an EchoEngine over a ByteTokenizer
// with the ChatML renderer. The model "folder" must be the word `echo`, so a
// real folder given to the test server is refused rather than faked.
// Knobs from the environment: TANDEM_ECHO_STEP_US (engine step time, default
// 2000), TANDEM_ECHO_LOAD_MS (load delay, for the "starting" state),
// TANDEM_ECHO_PAGES (KV pages per model).
#pragma once

#include "server/model_service.h"

namespace tandem::testing {

StatusOr<std::unique_ptr<server::ModelService>> make_echo_service(const std::string& name, const std::string& path,
                                                                  const server::EngineOptions& options);

}  // namespace tandem::testing
