#include "cli/commands.h"
#include "server/model_service.h"
#include "server/server_app.h"

namespace tandem::cli {

int run_serve(int argc, char** argv) {
  return server::serve_main(argc, argv, server::build_model_service, "tandem serve");
}

}  // namespace tandem::cli
