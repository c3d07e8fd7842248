// Wiring of the real engine per model. The engine (branch `engine`), the model
// loader (branch `model`), the tokenizer (branch `tokenizer`) and chat templates
// (branch `chat`) are not on main yet; until they are, serving a real model
// folder fails with this message rather than serving anything fake.
#include "server/model_service.h"

namespace tandem::server {

StatusOr<std::unique_ptr<ModelService>> build_model_service(const std::string& name, const std::string& path,
                                                            const EngineOptions& options) {
  return unimplemented("model '" + name + "' (" + path +
                       "): this build has no inference engine yet (the engine and model loader are not merged); "
                       "`tandem serve` cannot load models");
}

}  // namespace tandem::server
